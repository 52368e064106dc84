"""Fine-tuned classification (paper Table 5, bottom): the whole audio tower plus one linear layer on
its clip embedding, trained through the shared loop on a dataset's training fold, scored on its test fold."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from blat_core import compute
from blat_core.data import batching
from blat_core.data.labelled import LabelledClips
from blat_core.data.prepared import PreparedDataset
from blat_core.train import checkpointing, loop, sampling, schedules


class TowerClassifier(torch.nn.Module):
    """An audio tower and a linear head on its clip embedding."""

    def __init__(self, tower: torch.nn.Module, num_classes: int):
        super().__init__()
        self.tower = tower
        self.head = torch.nn.Linear(tower.embedding_dim, num_classes)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.tower.forward_embedding(wave, lengths))  # (B, classes)


def train_classifier(
    make_tower: Callable[[], torch.nn.Module],
    data: LabelledClips,
    prepared: PreparedDataset,
    train: np.ndarray,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    max_samples: int,
    device: torch.device,
    checkpointer: checkpointing.Checkpointer,
    checkpoint_every: int,
    head_lr_scale: float = 10.0,
    stop_after: int | None = None,
    history: list | None = None,
) -> TowerClassifier | None:
    """Train tower + head for `steps` on the clips of mask `train` (Adam; the new head at `head_lr_scale`
    times the tower's LR) and keep the final weights; None when stopped early by `stop_after` (a test's
    stand-in for a killed run). `history` receives [step, {"loss": mean}] per log window."""
    compute.seed_everything(seed)
    model = TowerClassifier(make_tower(), len(data.classes)).to(device)
    batching.check_sample_rate(getattr(model.tower, "sample_rate", None), prepared, "the tower to fine-tune")
    groups = [{"params": model.tower.parameters(), "lr": lr},
              {"params": model.head.parameters(), "lr": head_lr_scale * lr}]  # fmt: skip
    optimizer = torch.optim.Adam(groups, fused=device.type == "cuda")
    train_ids = [a for a, keep in zip(data.audio_ids, train, strict=True) if keep]
    targets = torch.as_tensor(data.targets[train])
    clips = batching.ClipDataset(prepared, train_ids, max_samples)
    plan_size = min(batch_size, len(train_ids))

    def batches(start: int) -> Iterator:
        for step in range(start, steps):
            indices = sampling.epoch_batches(seed, step, len(train_ids), plan_size)
            waves, lengths, _ = batching.pad_collate([clips[(int(i), (seed, step, k))] for k, i in enumerate(indices)])
            yield waves, lengths, targets[indices]

    def step_fn(batch) -> dict:
        waves, lengths, batch_targets = batch
        with compute.autocast(device):
            logits = model(batching.to_device_float(waves, device), lengths.to(device)).float()
        batch_targets = batch_targets.to(device)
        if data.multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, batch_targets)
        else:
            loss = F.cross_entropy(logits, batch_targets.argmax(1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach(), "batch_size": len(batch_targets)}

    schedule = loop.LoopSchedule(steps, schedules.constant, max(1, steps // 4), checkpoint_every)
    reached = loop.train_steps(model, optimizer, batches, step_fn, schedule, checkpointer, stop_after=stop_after,
                               history=history)  # fmt: skip
    if reached < steps:
        return None
    checkpointer.clear()
    return model


@torch.no_grad()
def score_classifier(
    model: TowerClassifier, data: LabelledClips, prepared: PreparedDataset, test: np.ndarray, batch_size: int, device
) -> dict[str, float]:
    """Metrics of the fine-tuned model on the clips of mask `test` (whole clips, eval mode)."""
    model.eval()
    test_ids = [a for a, keep in zip(data.audio_ids, test, strict=True) if keep]
    scores = np.zeros((len(test_ids), len(data.classes)), dtype=np.float32)
    for wave, lengths, indices in batching.full_clips(prepared, test_ids, batch_size, device):
        with compute.autocast(device):
            embedding = model.tower.forward_embedding(wave, lengths)
        scores[indices.numpy()] = model.head(embedding.float()).cpu().numpy()
    return data.score(test, scores)
