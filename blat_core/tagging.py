"""The tagger: CNN14 trained on AudioSet tags with multi-label BCE (or imported from PANNs), and mAP."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from blat_core import batching, training
from blat_core.params import bounded
from blat_core.prepared import PreparedDataset

log = logging.getLogger(__name__)


@dataclass
class TaggerParams:
    """The `tagger` section of params.yaml."""

    checkpoint: str  # an official PANNs .pth to import instead of training; "" trains
    steps: int = bounded(ge=1)
    batch_size: int = bounded(ge=2)
    lr: float = bounded(gt=0.0)
    weight_decay: float = bounded(ge=0.0)
    warmup_steps: int = bounded(ge=0)
    max_seconds: float = bounded(gt=0.0)
    mixup_alpha: float = bounded(ge=0.0)
    balanced_sampling: bool = False
    log_every: int = bounded(ge=1, default=10)
    checkpoint_every: int = bounded(ge=1, default=100)
    seed: int = 0


def read_classes(prepared_audioset: Path) -> list[tuple[str, str]]:
    """The AudioSet ontology (mid, display name) in class-index order, as prepare@audioset saved it."""
    path = Path(prepared_audioset) / "classes.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: re-run `dvc repro prepare@audioset`")
    with path.open(newline="") as handle:
        return [(row["mid"], row["display_name"]) for row in csv.DictReader(handle)]


def multi_hot(tag_lists: list[list[str]], classes: list[tuple[str, str]]) -> np.ndarray:
    """(clips, classes) float32 targets from each clip's tag mids."""
    column = {mid: i for i, (mid, _) in enumerate(classes)}
    targets = np.zeros((len(tag_lists), len(classes)), dtype=np.float32)
    for row, mids in enumerate(tag_lists):
        targets[row, [column[m] for m in mids if m in column]] = 1.0
    return targets


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """Mean over classes with at least one positive of sklearn's average precision; (mAP, classes scored)."""
    scored = np.flatnonzero(targets.sum(axis=0) > 0)
    if len(scored) == 0:
        return float("nan"), 0
    return float(np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in scored])), len(scored)


def label_frequency_map(train_targets: np.ndarray, eval_targets: np.ndarray) -> float:
    """The chance baseline: every clip scored by each class's training frequency."""
    scores = np.broadcast_to(train_targets.mean(axis=0), eval_targets.shape)
    return mean_average_precision(eval_targets, scores)[0]


def tagger_step(model, optimizer, batch, targets: torch.Tensor, params: TaggerParams, device) -> dict[str, float]:
    """One optimisation step of multi-label BCE (with mixup when `mixup_alpha` > 0)."""
    waves, lengths, indices = batch
    audio = batching.to_device_float(waves, device)
    lengths = lengths.to(device)
    target = targets[indices].to(device)
    if params.mixup_alpha > 0:
        lam = float(np.random.beta(params.mixup_alpha, params.mixup_alpha))
        audio = lam * audio + (1 - lam) * audio.roll(1, dims=0)
        lengths = torch.maximum(lengths, lengths.roll(1))
        target = lam * target + (1 - lam) * target.roll(1, dims=0)
    with training.autocast(device):
        logits = model(audio, lengths)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "batch_size": len(indices)}  # read (a host sync) only when logged


@torch.no_grad()
def predict(model, prepared: PreparedDataset, ids: list[str], batch_size: int, device, workers: int = 0) -> np.ndarray:
    """Sigmoid tag scores (clips, classes) on full clips, in eval mode."""
    model.eval()
    scores = []
    for wave, lengths, _ in batching.full_clips(prepared, ids, batch_size, device, workers, desc="tagger eval"):
        with training.autocast(device):
            logits = model(wave, lengths)
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros((0, 0), dtype=np.float32)
