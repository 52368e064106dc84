"""Clip batches from prepared shards: int16 reads in the workers, zero padding with lengths,
float conversion on the device (SPEC §9: move int16, convert once on the GPU)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from blat_core.data.prepared import PreparedDataset


class ClipDataset(torch.utils.data.Dataset):
    """Item (index, crop seed or None) -> (int16 waveform, index); a seeded random crop when too long."""

    def __init__(self, prepared: PreparedDataset, ids: list[str], max_samples: int | None):
        self.prepared, self.ids, self.max_samples = prepared, list(ids), max_samples

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: tuple[int, tuple | None]) -> tuple[torch.Tensor, int]:
        index, seed = item
        wave = crop(self.prepared.waveform(self.ids[index]), self.max_samples, seed)
        return torch.from_numpy(np.ascontiguousarray(wave)), index


def crop(wave: np.ndarray, max_samples: int | None, seed: tuple | None) -> np.ndarray:
    """Training crops a too-long clip at random (seeded per step and position); evaluation (seed None)
    never crops: the same clip always gives the same full waveform."""
    if max_samples is None or seed is None or len(wave) <= max_samples:
        return wave
    offset = int(np.random.default_rng(list(seed)).integers(0, len(wave) - max_samples + 1))
    return wave[offset : offset + max_samples]


def pad_collate(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (B, longest) int16 zero-padded waveforms, (B,) lengths, (B,) dataset indices."""
    lengths = torch.tensor([len(wave) for wave, _ in items], dtype=torch.long)
    waves = torch.zeros(len(items), int(lengths.max()), dtype=torch.int16)
    for row, (wave, _) in enumerate(items):
        waves[row, : len(wave)] = wave
    return waves, lengths, torch.tensor([index for _, index in items], dtype=torch.long)


def to_device_float(waves: torch.Tensor, device: torch.device) -> torch.Tensor:
    """int16 (B, T) -> float32 in [-1, 1) on `device` (the conversion happens after the transfer)."""
    return waves.to(device, non_blocking=True).float().div_(32768.0)


def loader(dataset: torch.utils.data.Dataset, batch_sampler, workers: int, device: torch.device):
    """A DataLoader over explicit batches; pinned memory on GPU; each worker opens its own shard handles."""
    # An own generator: creating the iterator must not draw from the global RNG, or a resumed run's
    # dropout masks would differ from an uninterrupted run's.
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=pad_collate,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        multiprocessing_context="fork" if workers else None,
        generator=torch.Generator().manual_seed(0),
    )


def eval_batches(count: int, batch_size: int) -> list[list[tuple[int, None]]]:
    """Sequential full-clip batches (no crop) over items 0..count-1."""
    return [[(i, None) for i in range(start, min(count, start + batch_size))] for start in range(0, count, batch_size)]


def check_sample_rate(model_rate: int | None, prepared: PreparedDataset, what: str) -> None:
    """A model meets a prepared dataset: both must be at one sample rate, or the front end reads the audio at the
    wrong speed (an imported 32 kHz checkpoint on 16 kHz clips scores, but scores nonsense)."""
    if model_rate is not None and prepared.sample_rate and int(model_rate) != prepared.sample_rate:
        raise ValueError(f"{what} expects {model_rate} Hz audio, but {prepared.folder} is prepared at "
                         f"{prepared.sample_rate} Hz: set prepare.sample_rate: {model_rate} (the paper profile "
                         "uses 32000) and prepare again, or score a model trained at the data's rate")  # fmt: skip


def full_clips(
    prepared: PreparedDataset, ids: list[str], batch_size: int, device, workers: int = 0, desc: str | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Every clip of `ids` whole (never cropped), in order: (float waves on `device`, lengths on `device`,
    item indices into `ids`) per batch; a progress bar when `desc` is given. The evaluation-time loop of
    embedding, tagging, frame extraction and fine-tuning's test pass."""
    device = torch.device(device)
    batches = loader(ClipDataset(prepared, ids, max_samples=None), eval_batches(len(ids), batch_size), workers, device)
    for waves, lengths, indices in tqdm(batches, desc=desc, mininterval=2.0, disable=desc is None):
        yield to_device_float(waves, device), lengths.to(device), indices
