"""Embedding audio files and waveforms with an exported BLAT model, deterministically: a clip longer than
the window is embedded as the mean of fixed windows covering it (never a random crop).

    from blat_core.models.blat_model import load_blat
    from blat_core.models.embed import embed_captions
    from blat_core.models.inference import embed_files

    model, tokenizer, _ = load_blat("data/models/blat_stage2")
    similarity = embed_files(model, ["dog.wav"]) @ embed_captions(model, tokenizer, ["a dog barks"], 1, "cpu").T
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from blat_core import compute
from blat_core.data import batching


def windows(wave: np.ndarray, size: int) -> list[np.ndarray]:
    """Fixed windows covering a clip: the whole clip when it fits, else windows at 0, size, 2·size, … and
    one aligned to the end (so every sample is seen and every window is full). Never random."""
    if len(wave) <= size:
        return [wave]
    starts = list(range(0, len(wave) - size + 1, size))
    if starts[-1] + size < len(wave):
        starts.append(len(wave) - size)
    return [wave[s : s + size] for s in starts]


def stream_windows(pieces: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The windows `windows()` cuts from the concatenation of `pieces`, in order, holding about two windows
    of samples at a time (a file of any length streams through)."""
    return (window for _, window in timed_windows(pieces, size))


def timed_windows(pieces: Iterable[np.ndarray], size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first sample, window) for each window `stream_windows` yields."""
    pending, last, start = np.zeros(0, dtype=np.int16), None, 0
    for piece in pieces:
        pending = np.concatenate([pending, piece]) if len(pending) else piece
        while len(pending) >= size:
            last, pending = pending[:size], pending[size:]
            yield start, last
            start += size
    if last is None:
        yield 0, pending  # shorter than one window: the whole clip
    elif len(pending):
        yield start + len(pending) - size, np.concatenate([last[len(pending) :], pending])  # aligned to the end


class WindowEmbedder:
    """Embeds (clip, window) pairs in batches of `batch_size` and sums each clip's window embeddings;
    `drop` forgets a clip (a file that failed half-way), `finish` gives the (clips, E) normalised means (with
    `mean`, the plain means: a classifier's probabilities)."""

    def __init__(self, model, batch_size: int, device, mean: bool = False):
        self.model, self.batch_size, self.device, self.mean = model, batch_size, device, mean
        self.queue: list[tuple[int, np.ndarray]] = []
        self.sums: dict[int, torch.Tensor] = {}
        self.counts: dict[int, int] = {}

    def add(self, clip: int, window: np.ndarray) -> None:
        self.queue.append((clip, window))
        if len(self.queue) == self.batch_size:
            self.flush()

    @torch.no_grad()
    def flush(self) -> None:
        if not self.queue:
            return
        wave, lengths, _ = batching.pad_collate([(torch.from_numpy(w), k) for k, (_, w) in enumerate(self.queue)])
        with compute.autocast(self.device):
            embedding = self.model.encode_audio(batching.to_device_float(wave, self.device), lengths.to(self.device))
        for (clip, _), row in zip(self.queue, embedding.float().cpu(), strict=True):
            self.sums[clip] = self.sums[clip] + row if clip in self.sums else row.clone()
            self.counts[clip] = self.counts.get(clip, 0) + 1
        self.queue = []

    def drop(self, clip: int) -> None:
        self.queue = [(c, w) for c, w in self.queue if c != clip]
        self.sums.pop(clip, None)
        self.counts.pop(clip, None)

    def finish(self, clips: int) -> np.ndarray:
        self.flush()
        sums = torch.stack([self.sums[c] for c in range(clips)]) if clips else torch.zeros(0, self.model.embed_dim)
        if self.mean:
            return (sums / torch.tensor([[self.counts[c]] for c in range(clips)], dtype=sums.dtype)).numpy()
        return torch.nn.functional.normalize(sums, dim=-1).numpy()


def embed_waves(
    model, waves: list[np.ndarray], window: int, batch_size: int, device, progress: bool = True
) -> np.ndarray:
    """(clips, E) L2-normalised embeddings: the mean of each clip's window embeddings, normalised again."""
    embedder = WindowEmbedder(model, batch_size, device)
    pieces = [(i, w) for i, wave in enumerate(waves) for w in windows(wave, window)]
    quiet = not progress or len(pieces) <= batch_size
    for clip, piece in tqdm(pieces, desc="embedding", mininterval=2.0, disable=quiet):
        embedder.add(clip, piece)
    return embedder.finish(len(waves))


READ_SECONDS = 3600.0  # read_audio's default cap: an hour is 230 MB of int16 at 32 kHz


def read_audio(path: str | Path, sample_rate: int, max_seconds: float = READ_SECONDS) -> np.ndarray:
    """One file as int16 mono at `sample_rate` (any input rate and channel count), decoded and resampled block by
    block (memory: the result plus one block); a file longer than `max_seconds`, or unreadable, is a ValueError
    naming it. To embed files of any length use `embed_files`, which never holds a whole file."""
    from blat_core.data.audio import AudioError, stream_clip

    try:
        pieces = list(stream_clip(str(path), sample_rate, max_seconds, "max_seconds"))
    except AudioError as error:
        raise ValueError(f"{path}: {error.reason} ({error.detail})") from None
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def embed_file(embedder: WindowEmbedder, clip: int, path: str | Path, sample_rate: int, window: int) -> tuple[int, int]:
    """Add one file's windows to `embedder` as clip `clip`, decoding, resampling and cutting them as a stream
    (memory: a block and a window, whatever the file's length); (samples, windows). Raises AudioError after
    dropping the clip, should the file fail half-way."""
    from blat_core.data.audio import AudioError, stream_clip

    samples, count = 0, 0
    try:
        for start, piece in timed_windows(stream_clip(str(path), sample_rate), window):
            embedder.add(clip, piece)
            samples, count = max(samples, start + len(piece)), count + 1
    except AudioError:
        embedder.drop(clip)
        raise
    return samples, count


def embed_files(model, paths: list[str | Path], device="cpu", window_seconds: float = 10.0, batch_size: int = 16):
    """(files, E) L2-normalised audio embeddings of audio files, as a tensor: each file streamed window by window
    (`embed_file`), so a file of hours needs no more memory than a clip; an unreadable file is a ValueError."""
    from blat_core.data.audio import AudioError

    device = torch.device(device)
    model = model.to(device).eval()
    rate = model.audio_encoder.sample_rate
    embedder = WindowEmbedder(model, batch_size, device)
    for clip, path in enumerate(paths):
        try:
            embed_file(embedder, clip, path, rate, int(window_seconds * rate))
        except AudioError as error:
            raise ValueError(f"{path}: {error.reason} ({error.detail})") from None
    return torch.from_numpy(embedder.finish(len(paths)))
