"""Classification protocols (SPEC §2): the datasets' label sets and folds, zero-shot scoring by
cosine similarity with label text, and a linear probe on frozen clip embeddings.

Single-label sets (ESC-50, UrbanSound8K, VGGSound) report accuracy (ESC-50 / US8K: the mean over
their standard folds; VGGSound: the test split, plus mAP); multi-label sets (FSD50K, AudioSet) mAP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from blat_core.data.datasets import LABELLED_TARGETS, recipe
from blat_core.data.prepared import PreparedDataset, read_classes
from blat_core.eval.retrieval import require_finite


@dataclass
class LabelledClips:
    """A classification dataset: clip ids, folds (or splits), class names and (clips, classes) targets."""

    name: str
    audio_ids: list[str]
    folds: np.ndarray  # fold number per clip (-1 where the set has no folds)
    splits: np.ndarray
    classes: list[str]
    targets: np.ndarray  # (clips, classes) 0/1
    trainable: np.ndarray | None = None  # per clip: may be trained on (the leakage gate); None = every clip

    @property
    def multi_label(self) -> bool:
        return recipe(self.name).classification.multi_label

    def subset(self, keep: np.ndarray) -> LabelledClips:
        """The clips of boolean mask `keep` (class list unchanged)."""
        ids = [a for a, k in zip(self.audio_ids, keep, strict=True) if k]
        trainable = None if self.trainable is None else self.trainable[keep]
        return LabelledClips(self.name, ids, self.folds[keep], self.splits[keep], self.classes, self.targets[keep],
                             trainable)  # fmt: skip

    def used(self, train: bool) -> LabelledClips:
        """Only the clips some evaluation set uses (its test clips, and with `train` its training clips too):
        zero-shot on AudioSet embeds the 20K eval clips, not the 2M training clips."""
        keep = np.zeros(len(self.audio_ids), dtype=bool)
        for train_mask, test_mask in self.evaluation_sets():
            keep |= test_mask | (train_mask if train else False)
        return self.subset(keep)

    def evaluation_sets(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train mask, test mask) per standard fold / split; a train mask never holds a clip the leakage gate
        holds out (e.g. an AudioSet training clip that is an AudioCaps test clip)."""
        scoring = recipe(self.name).classification
        allowed = np.ones(len(self.audio_ids), dtype=bool) if self.trainable is None else self.trainable
        if scoring.test_split is not None:
            return [(np.isin(self.splits, scoring.train_splits) & allowed, self.splits == scoring.test_split)]
        return [((self.folds != fold) & allowed, self.folds == fold) for fold in sorted(set(self.folds.tolist()))]


def labelled_clips(prepared: PreparedDataset) -> LabelledClips:
    """Read a prepared classification set; AudioSet's classes are its ontology display names."""
    name = prepared.name
    if recipe(name).classification is None:
        raise ValueError(f"{name} is not a classification dataset (one of {', '.join(LABELLED_TARGETS)})")
    rows = list(prepared.rows())
    trainable = prepared.training_ids()
    if recipe(name).classification.ontology_classes:
        classes = [display for _, display in read_classes(prepared.folder)]
        labels = [list(r["tag_names"]) for r in rows]
    else:
        labels = [list(r["labels"]) for r in rows]
        classes = sorted({label for row in labels for label in row})
    column = {c: i for i, c in enumerate(classes)}
    targets = np.zeros((len(rows), len(classes)), dtype=np.float32)
    for i, row in enumerate(labels):
        targets[i, [column[label] for label in row if label in column]] = 1.0
    return LabelledClips(
        name,
        [r["audio_id"] for r in rows],
        np.array([r["fold"] if r["fold"] is not None else -1 for r in rows]),
        np.array([r["split"] for r in rows]),
        classes,
        targets,
        np.array([r["audio_id"] in trainable for r in rows], dtype=bool),
    )


def label_text(label: str, template: str = "{}") -> str:
    """Class name as text (SPEC §2: `_` -> space), put into the prompt template."""
    return template.format(label.replace("_", " "))


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
    scores = np.broadcast_to(train_targets.mean(axis=0), eval_targets.shape)
    return mean_average_precision(eval_targets, scores)[0]


def score(data: LabelledClips, test: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Accuracy (single-label) and/or mAP on the clips of mask `test`; non-finite scores are an error
    naming the clip."""
    targets = data.targets[test]
    require_finite(scores, "clip", [a for a, keep in zip(data.audio_ids, test, strict=True) if keep])
    result = {"mAP": mean_average_precision(targets, scores)[0]}
    if not data.multi_label:
        result = {"accuracy": accuracy(targets, scores), **result}
    return result


def zero_shot(data: LabelledClips, audio: np.ndarray, text: np.ndarray) -> dict:
    """Cosine scores of every clip against every class text; metrics per evaluation set and their mean.
    Single-label sets add `details`: per-class accuracy and the class each is most confused with."""
    scores = F.normalize(torch.as_tensor(audio), dim=-1) @ F.normalize(torch.as_tensor(text), dim=-1).T
    scores = scores.numpy()
    per_set = [score(data, test, scores[test]) for _, test in data.evaluation_sets()]
    metrics = _mean(per_set)
    if not data.multi_label:
        tested = np.logical_or.reduce([test for _, test in data.evaluation_sets()])  # boolean masks
        metrics["details"] = {"per_class": per_class(data.classes, data.targets[tested], scores[tested])}
    return metrics


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
            per_set.append(score(data, test, layer(x_test).numpy()))
    return _mean(per_set)


def _mean(per_set: list[dict[str, float]]) -> dict:
    return {k: float(np.mean([s[k] for s in per_set])) for k in per_set[0]} | {"sets": len(per_set)}


def chance(data: LabelledClips) -> float:
    """Accuracy of always answering the most frequent class (single-label sets)."""
    return float(data.targets.sum(0).max() / len(data.targets))
