"""Deterministic batch plans: batch `step` is a pure function of (seed, step), so a resumed run draws
exactly the batches (and crops) an uninterrupted one would."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
import torch


def epoch_batches(seed: int, step: int, num_items: int, batch_size: int) -> np.ndarray:
    """Indices of batch `step`: a fresh permutation per epoch (seed, epoch), last partial batch dropped. The
    permutation is drawn once per epoch, not per step: a step costs O(batch), not O(dataset)."""
    per_epoch = max(1, num_items // batch_size)
    epoch, position = divmod(step, per_epoch)
    return _permutation(seed, epoch, num_items)[position * batch_size : (position + 1) * batch_size].copy()


@functools.lru_cache(maxsize=2)
def _permutation(seed: int, epoch: int, num_items: int) -> np.ndarray:
    order = np.random.default_rng([seed, epoch]).permutation(num_items)
    order.flags.writeable = False
    return order


def balanced_batches(seed: int, step: int, class_members: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Indices of batch `step` drawn class-first (uniform over classes with members), then clip."""
    rng = np.random.default_rng([seed, step, 1])
    classes = [c for c in class_members if len(c)]
    picks = rng.integers(0, len(classes), batch_size)
    return np.array([classes[c][rng.integers(0, len(classes[c]))] for c in picks])


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps [start, total), the list of (item index, (seed, step, position)) of each batch;
    the second element seeds any per-item randomness (a crop), so a resumed run draws the same."""

    def __init__(self, plan: Callable[[int], np.ndarray], seed: int, start: int, total: int):
        self.plan, self.seed, self.start, self.total = plan, seed, start, total

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.total):
            indices = self.plan(step)
            yield [(int(i), (self.seed, step, k)) for k, i in enumerate(indices)]

    def __len__(self) -> int:
        return self.total - self.start
