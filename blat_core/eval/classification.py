"""Classification protocols (SPEC §2): zero-shot scoring by cosine similarity with label text and a linear
probe on frozen clip embeddings, over a set's labelled clips (`data/labelled.py`) and scored by the metric
leaves (`eval/metrics/classification.py`).

Single-label sets (ESC-50, UrbanSound8K, VGGSound) report accuracy (ESC-50 / US8K: the mean over
their standard folds; VGGSound: the test split, plus mAP); multi-label sets (FSD50K, AudioSet) mAP.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from blat_core.data.labelled import LabelledClips
from blat_core.eval.metrics.classification import per_class


def label_text(label: str, template: str = "{}") -> str:
    """Class name as text (SPEC §2: `_` -> space), put into the prompt template."""
    return template.format(label.replace("_", " "))


def zero_shot(data: LabelledClips, audio: np.ndarray, text: np.ndarray) -> dict:
    """Cosine scores of every clip against every class text; metrics per evaluation set and their mean.
    Single-label sets add `details`: per-class accuracy and the class each is most confused with."""
    scores = F.normalize(torch.as_tensor(audio), dim=-1) @ F.normalize(torch.as_tensor(text), dim=-1).T
    scores = scores.numpy()
    per_set = [data.score(test, scores[test]) for _, test in data.evaluation_sets()]
    metrics = _mean(per_set)
    if not data.multi_label:
        tested = np.logical_or.reduce([test for _, test in data.evaluation_sets()])  # boolean masks
        metrics["details"] = {"per_class": per_class(data.classes, data.targets[tested], scores[tested])}
    return metrics


def linear_probe(
    data: LabelledClips, embeddings: np.ndarray, seed: int, epochs: int, lr: float, weight_decay: float
) -> dict:
    """One linear layer on frozen embeddings per evaluation set (full-batch Adam, seeded init)."""
    per_set = []
    for train, test in data.evaluation_sets():
        mean, std = embeddings[train].mean(0), embeddings[train].std(0) + 1e-6  # standardise on train only
        x_train = torch.as_tensor((embeddings[train] - mean) / std)
        x_test = torch.as_tensor((embeddings[test] - mean) / std)
        y_train = torch.as_tensor(data.targets[train])
        generator = torch.Generator().manual_seed(seed)
        layer = torch.nn.Linear(x_train.shape[1], y_train.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.01)
            layer.bias.zero_()
        optimizer = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(epochs):
            logits = layer(x_train)
            if data.multi_label:
                loss = F.binary_cross_entropy_with_logits(logits, y_train)
            else:
                loss = F.cross_entropy(logits, y_train.argmax(1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            per_set.append(data.score(test, layer(x_test).numpy()))
    return _mean(per_set)


def _mean(per_set: list[dict[str, float]]) -> dict:
    return {k: float(np.mean([s[k] for s in per_set])) for k in per_set[0]} | {"sets": len(per_set)}


def chance(data: LabelledClips) -> float:
    """Accuracy of always answering the most frequent class (single-label sets)."""
    return float(data.targets.sum(0).max() / len(data.targets))
