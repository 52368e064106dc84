"""A prepared classification set as labelled clips (SPEC §2): clip ids, folds or splits, class names and
targets, and the (train, test) masks of its standard evaluation sets, which never train on a clip the
leakage gate holds out. Read by the fine-tunes (train/) and the classification protocols (eval/)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

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
        return self.subset(self.used_mask(train))

    def used_mask(self, train: bool) -> np.ndarray:
        """The clips `used` keeps, as a mask."""
        keep = np.zeros(len(self.audio_ids), dtype=bool)
        for train_mask, test_mask in self.evaluation_sets():
            keep |= test_mask | (train_mask if train else False)
        return keep

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


def labelled_clips(prepared: PreparedDataset, used: bool | None = None) -> LabelledClips:
    """Read a prepared classification set; AudioSet's classes are its ontology display names. With `used` (train
    or not, as in `LabelledClips.used`), only the clips some evaluation set uses, and targets are built for those
    alone: read columnar, AudioSet's 2.08M clips cost ≈0.2 KB each here, where dense targets for all would be 4.4 GB."""
    name = prepared.name
    scoring = classification_for(name, prepared.user_info)
    if scoring is None:
        raise ValueError(f"{name} is not a classification dataset (one of {', '.join(LABELLED_TARGETS)}, or a "
                         "dataset of your own with `recipe: labels`)")  # fmt: skip
    column = "tag_names" if scoring.ontology_classes else "labels"
    if scoring.ontology_classes:
        classes = [display for _, display in read_classes(prepared.folder)]
    else:
        classes = sorted(set(pc.unique(prepared.list_column(column)[0]).to_pylist()))
    clips = LabelledClips(
        name,
        prepared.ids,
        np.array([-1 if fold is None else fold for fold in prepared.column("fold")]),
        np.array(prepared.column("split")),
        classes,
        np.zeros((len(prepared), 0), dtype=np.float32),  # built below, for the clips kept
        scoring,
        prepared.training_mask(),
    )
    keep = np.ones(len(prepared), dtype=bool) if used is None else clips.used_mask(used)
    clips = clips.subset(keep)
    clips.targets = prepared.multi_hot(column, classes, keep)
    return clips
