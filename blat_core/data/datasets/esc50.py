"""ESC-50 (Piczak 2015): 2,000 five-second clips, 50 classes, five folds; single-label classification
(Table 5: accuracy, the mean over the folds).

Metadata: meta/esc50.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import ReadResult, read_folds, require


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "esc50.csv", "point prepare.datasets.esc50.meta at ESC-50's meta/ folder")
    return read_folds(path, pattern, "filename", (0, 1, 3))


RECIPE = Recipe(
    name="esc50",
    order=50,
    read=read,
    pattern_fields={"filename": "x.wav", "fold": 1},
    eval_splits=frozenset(),
    classification=Classification(multi_label=False, primary_metric="accuracy"),
)
