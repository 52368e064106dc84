"""Classification metrics (SPEC §2): accuracy for single-label sets, mAP (the mean over classes with a
positive of sklearn's average precision) for every set, the label-frequency chance baseline and the
per-class table of the report."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from blat_core.eval.metrics.retrieval import require_finite


def accuracy(targets: np.ndarray, scores: np.ndarray) -> float:
    """Share of clips whose top-scored class is their class; a tie goes to the first class (argmax)."""
    return float(np.mean(scores.argmax(axis=1) == targets.argmax(axis=1)))


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> tuple[float, int]:
    """Mean over classes with at least one positive of sklearn's average precision; (mAP, classes scored)."""
    scored = np.flatnonzero(targets.sum(axis=0) > 0)
    if len(scored) == 0:
        return float("nan"), 0
    return float(np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in scored])), len(scored)


def label_frequency_map(train_targets: np.ndarray, eval_targets: np.ndarray) -> float:
    """The chance baseline: every clip scored by each class's training frequency."""
    scores = np.broadcast_to(train_targets.mean(axis=0, dtype=np.float32), eval_targets.shape)  # bool or float 0/1
    return mean_average_precision(eval_targets, scores)[0]


def label_metrics(targets: np.ndarray, scores: np.ndarray, multi_label: bool, ids: list[str]) -> dict[str, float]:
    """Accuracy (single-label) and/or mAP of (clips, classes) `scores` against 0/1 `targets`; non-finite
    scores are an error naming the clip (`ids`: one per row)."""
    require_finite(scores, "clip", ids)
    result = {"mAP": mean_average_precision(targets, scores)[0]}
    if not multi_label:
        result = {"accuracy": accuracy(targets, scores), **result}
    return result


def per_class(classes: list[str], targets: np.ndarray, scores: np.ndarray) -> dict[str, dict]:
    """Single-label: for each class with clips, {accuracy, clips, confused_with (the wrong class its clips
    are most often given, "" when never wrong), confused (how many clips went there)}."""
    truth, predicted = targets.argmax(axis=1), scores.argmax(axis=1)
    out = {}
    for c, name in enumerate(classes):
        mine = truth == c
        if not mine.any():
            continue
        wrong = np.bincount(predicted[mine & (predicted != c)], minlength=len(classes))
        top = int(wrong.argmax())
        out[name] = {"accuracy": float(np.mean(predicted[mine] == c)), "clips": int(mine.sum()),
                     "confused_with": classes[top] if wrong[top] else "", "confused": int(wrong[top])}  # fmt: skip
    return out
