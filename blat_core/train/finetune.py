"""Fine-tuned classification (paper Table 5, bottom): the whole audio tower plus one linear layer on
its clip embedding, trained on a dataset's training fold and scored on its test fold."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from blat_core import compute
from blat_core.data import batching
from blat_core.data.prepared import PreparedDataset
from blat_core.eval.classification import LabelledClips, score
from blat_core.train import sampling


def finetune_classifier(
    make_tower: Callable[[], torch.nn.Module],
    data: LabelledClips,
    prepared: PreparedDataset,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    max_samples: int,
    device: torch.device,
) -> dict[str, float]:
    """Train tower + head for `steps` (Adam; the new head at 10x the tower's LR); metrics on the test clips."""
    compute.seed_everything(seed)
    tower = make_tower().to(device).train()
    head = torch.nn.Linear(tower.embedding_dim, len(data.classes)).to(device)
    groups = [{"params": tower.parameters(), "lr": lr}, {"params": head.parameters(), "lr": 10 * lr}]
    optimizer = torch.optim.Adam(groups)
    train_ids = [a for a, keep in zip(data.audio_ids, train, strict=True) if keep]
    targets = torch.as_tensor(data.targets[train])
    clips = batching.ClipDataset(prepared, train_ids, max_samples)
    for step in range(steps):
        indices = sampling.epoch_batches(seed, step, len(train_ids), min(batch_size, len(train_ids)))
        waves, lengths, _ = batching.pad_collate([clips[(int(i), (seed, step, k))] for k, i in enumerate(indices)])
        with compute.autocast(device):
            logits = head(tower.forward_embedding(batching.to_device_float(waves, device), lengths.to(device))).float()
        batch_targets = targets[indices].to(device)
        if data.multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, batch_targets)
        else:
            loss = F.cross_entropy(logits, batch_targets.argmax(1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    tower.eval()
    test_ids = [a for a, keep in zip(data.audio_ids, test, strict=True) if keep]
    scores = np.zeros((len(test_ids), len(data.classes)), dtype=np.float32)
    with torch.no_grad():
        for wave, lengths, indices in batching.full_clips(prepared, test_ids, batch_size, device):
            with compute.autocast(device):
                embedding = tower.forward_embedding(wave, lengths)
            scores[indices.numpy()] = head(embedding.float()).cpu().numpy()
    return score(data, test, scores)
