"""A prepared classification set as labelled clips (SPEC §2): clip ids, folds or splits, class names and
targets, and the (train, test) masks of its standard evaluation sets, which never train on a clip the
leakage gate holds out. Read by the fine-tunes (train/) and the classification protocols (eval/)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blat_core.data.datasets import LABELLED_TARGETS, Classification, classification_for
from blat_core.data.prepared import PreparedDataset, read_classes
from blat_core.eval.metrics.classification import label_metrics


@dataclass
class LabelledClips:
    """A classification dataset: clip ids, folds (or splits), class names and (clips, classes) targets."""

    name: str
    audio_ids: list[str]
    folds: np.ndarray  # fold number per clip (-1 where the set has no folds)
    splits: np.ndarray
    classes: list[str]
    targets: np.ndarray  # (clips, classes) 0/1
    scoring: Classification
    trainable: np.ndarray | None = None  # per clip: may be trained on (the leakage gate); None = every clip

    @property
    def multi_label(self) -> bool:
        return self.scoring.multi_label

    def subset(self, keep: np.ndarray) -> LabelledClips:
        """The clips of boolean mask `keep` (class list unchanged)."""
        ids = [a for a, k in zip(self.audio_ids, keep, strict=True) if k]
        trainable = None if self.trainable is None else self.trainable[keep]
        return LabelledClips(self.name, ids, self.folds[keep], self.splits[keep], self.classes, self.targets[keep],
                             self.scoring, trainable)  # fmt: skip

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
        scoring = self.scoring
        allowed = np.ones(len(self.audio_ids), dtype=bool) if self.trainable is None else self.trainable
        if scoring.test_split is not None:
            return [(np.isin(self.splits, scoring.train_splits) & allowed, self.splits == scoring.test_split)]
        return [((self.folds != fold) & allowed, self.folds == fold) for fold in sorted(set(self.folds.tolist()))]

    def score(self, test: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        """Accuracy (single-label) and/or mAP on the clips of mask `test`; non-finite scores are an error
        naming the clip."""
        ids = [a for a, keep in zip(self.audio_ids, test, strict=True) if keep]
        return label_metrics(self.targets[test], scores, self.multi_label, ids)


def labelled_clips(prepared: PreparedDataset) -> LabelledClips:
    """Read a prepared classification set; AudioSet's classes are its ontology display names."""
    name = prepared.name
    scoring = classification_for(name, prepared.user_info)
    if scoring is None:
        raise ValueError(f"{name} is not a classification dataset (one of {', '.join(LABELLED_TARGETS)}, or a "
                         "dataset of your own with `recipe: labels`)")  # fmt: skip
    rows = list(prepared.rows())
    trainable = prepared.training_ids()
    if scoring.ontology_classes:
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
        scoring,
        np.array([r["audio_id"] in trainable for r in rows], dtype=bool),
    )


