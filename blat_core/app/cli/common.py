"""What the `blat` commands share: usage errors, audio folders read a chunk at a time, model loading,
text embedding, the index files `blat embed` writes, and CSV output."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from blat_core.atomic import atomic_path, csv_text
from blat_core.models.inference import embed_waves, windows

log = logging.getLogger("blat")


class UsageError(Exception):
    """A bad path, file or option: printed as one line, exit status 2."""


CHUNK_FILES = 256  # files decoded and held in memory at a time: a folder of any size streams through


@dataclass
class AudioFolder:
    """The audio files of a folder (recursive, sorted), read a chunk at a time, resampled to one rate;
    unreadable files are skipped and counted by reason."""

    root: Path
    files: list[Path]
    skipped: Counter = field(default_factory=Counter)

    @classmethod
    def scan(cls, root: str | Path) -> AudioFolder:
        root = Path(root)
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder of audio files")
        from blat_core.data.sources import AUDIO_EXTENSIONS, list_audio

        files, skipped = list_audio(root)  # regular files only: a FIFO or a link loop is skipped and counted
        if not files:
            raise UsageError(f"{root} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
                             + (f"; skipped {dict(skipped)}" if skipped else ""))  # fmt: skip
        return cls(root, [root / f for f in files], skipped)

    def chunks(self, sample_rate: int, desc: str = "audio files"):
        """Yield ([relative paths], [int16 waves]) for each chunk's readable files, with a progress bar;
        fails after the last chunk when no file at all could be read."""
        from blat_core.data.prepare import load_clip

        read, size = 0, CHUNK_FILES
        with tqdm(total=len(self.files), desc=desc, mininterval=2.0, disable=len(self.files) < 50) as bar:
            for start in range(0, len(self.files), size):
                names, waves = [], []
                for path in self.files[start : start + size]:
                    wave, reason, detail = load_clip(str(path), sample_rate, float("-inf"))
                    if wave is None:
                        self.skipped[reason] += 1
                        log.warning("skipped %s: %s (%s)", path, reason, detail)
                    else:
                        names.append(str(path.relative_to(self.root)))
                        waves.append(wave)
                read += len(names)
                if names:
                    yield names, waves
                bar.update(min(size, len(self.files) - start))
        if read == 0:
            raise UsageError(f"none of the {len(self.files)} audio files under {self.root} could be read: "
                             f"{dict(self.skipped)}")  # fmt: skip

    def summary(self) -> str:
        total = sum(self.skipped.values())
        return f"skipped {total}{f' {dict(self.skipped)}' if total else ''}"


def embed_folder(model, folder: AudioFolder, window_seconds: float, batch_size: int, device):
    """(paths, seconds, windows per file, (files, E) embeddings) of a folder, a chunk of files at a time."""
    rate = model.audio_encoder.sample_rate
    window = int(window_seconds * rate)
    paths, seconds, counts, parts = [], [], [], []
    for names, waves in folder.chunks(rate, desc="embedding"):
        parts.append(embed_waves(model, waves, window, batch_size, device, progress=False))
        paths += names
        seconds += [len(w) / rate for w in waves]
        counts += [len(windows(w, window)) for w in waves]
    return paths, seconds, counts, np.concatenate(parts)


def device_of(name: str | None) -> torch.device:
    from blat_core.compute import pick_device

    return torch.device(name) if name else pick_device()


def load_blat_folder(folder: str | Path, device):
    from blat_core.models.blat_model import load_blat
    from blat_core.models.checkpoints import CheckpointError

    folder = Path(folder)
    if not (folder / "blat.json").is_file():
        raise UsageError(f"{folder} is not a BLAT model folder (no blat.json): give e.g. data/models/blat_stage2")
    try:
        model, tokenizer, _ = load_blat(folder, device)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    return model, tokenizer


def embed_texts(model, tokenizer, texts: list[str], device) -> np.ndarray:
    from blat_core.models.embed import embed_captions

    return embed_captions(model, tokenizer, texts, 64, device).numpy()


def read_index(path: str | Path) -> tuple[list[str], np.ndarray, dict]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"index {path} not found: make one with `blat embed AUDIO_DIR --model M --out {path}`")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise UsageError(f"{path} is not a Parquet index written by `blat embed` ({error})") from error
    meta = json.loads((table.schema.metadata or {}).get(b"blat", b"null"))
    if meta is None or "embedding" not in table.column_names:
        raise UsageError(f"{path} is not an index written by `blat embed` (no embedding column / blat metadata)")
    embeddings = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(table.num_rows, -1)
    return table.column("path").to_pylist(), embeddings, meta


def check_index_model(index: str | Path, meta: dict, embeddings: np.ndarray, model_folder: str | Path,
                      text: np.ndarray) -> None:  # fmt: skip
    """Refuse to score an index with a model other than the one that embedded it: the two embedding spaces
    are unrelated, so the scores would mean nothing (a different width would crash in matmul)."""
    from blat_core.models.checkpoints import file_digest

    if text.shape[1] != embeddings.shape[1]:
        raise UsageError(f"{index} holds {embeddings.shape[1]}-d embeddings; {model_folder} makes {text.shape[1]}-d: "
                         f"embed the audio with this model (`blat embed ... --model {model_folder}`)")  # fmt: skip
    digest = file_digest(Path(model_folder) / "blat.safetensors")
    if meta.get("model_digest") and meta["model_digest"] != digest:
        raise UsageError(
            f"{index} was embedded by another model ({meta.get('model')}, weights {meta['model_digest'][:12]}) than "
            f"{model_folder} (weights {digest[:12]}): use that model, or re-embed with `blat embed ... --model "
            f"{model_folder}`"
        )


def write_rows(out: str | None, header: list[str], rows: list[list]) -> None:
    """A CSV to `out` (atomically), or to standard output when `out` is None."""
    if out is None:
        sys.stdout.write(csv_text(rows, header))
        return
    with atomic_path(out) as tmp:
        tmp.write_text(csv_text(rows, header))
