"""Embedding audio files and waveforms with an exported BLAT model, deterministically: a clip longer than
the window is embedded as the mean of fixed windows covering it (never a random crop).

    from blat_core.models.blat_model import load_blat
    from blat_core.models.embed import embed_captions
    from blat_core.models.inference import embed_files

    model, tokenizer, _ = load_blat("data/models/blat_stage2")
    similarity = embed_files(model, ["dog.wav"]) @ embed_captions(model, tokenizer, ["a dog barks"], 1, "cpu").T
"""

from __future__ import annotations

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


@torch.no_grad()
def embed_waves(
    model, waves: list[np.ndarray], window: int, batch_size: int, device, progress: bool = True
) -> np.ndarray:
    """(clips, E) L2-normalised embeddings: the mean of each clip's window embeddings, normalised again."""
    pieces = [(i, w) for i, wave in enumerate(waves) for w in windows(wave, window)]
    sums = torch.zeros(len(waves), model.embed_dim)
    for start in tqdm(range(0, len(pieces), batch_size), desc="embedding", mininterval=2.0,
                      disable=not progress or len(pieces) <= batch_size):  # fmt: skip
        batch = pieces[start : start + batch_size]
        wave, lengths, _ = batching.pad_collate([(torch.from_numpy(w), k) for k, (_, w) in enumerate(batch)])
        with compute.autocast(device):
            embedding = model.encode_audio(batching.to_device_float(wave, device), lengths.to(device))
        sums.index_add_(0, torch.tensor([i for i, _ in batch]), embedding.float().cpu())
    return torch.nn.functional.normalize(sums, dim=-1).numpy()


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """One file as int16 mono at `sample_rate` (any input rate and channel count); a clear error if unreadable."""
    from blat_core.data.prepare import load_clip

    wave, reason, detail = load_clip(str(path), sample_rate, float("-inf"))
    if wave is None:
        raise ValueError(f"{path}: {reason} ({detail})")
    return wave


def embed_files(model, paths: list[str | Path], device="cpu", window_seconds: float = 10.0, batch_size: int = 16):
    """(files, E) L2-normalised audio embeddings of audio files, as a tensor."""
    device = torch.device(device)
    rate = model.audio_encoder.sample_rate
    waves = [read_audio(p, rate) for p in paths]
    return torch.from_numpy(embed_waves(model.to(device).eval(), waves, int(window_seconds * rate), batch_size, device))
