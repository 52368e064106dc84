"""UrbanSound8K (Salamon et al. 2014): 8,732 clips of at most 4 s, 10 classes, ten folds (some files
stereo at 44.1 kHz); single-label classification (Table 5: accuracy, the mean over the folds).

Metadata: metadata/UrbanSound8K.csv; audio in fold1..fold10.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import ReadResult, read_folds, require


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "UrbanSound8K.csv", "point prepare.datasets.us8k.meta at UrbanSound8K's metadata/ folder")
    return read_folds(path, pattern, "slice_file_name", (0, 5, 7))


RECIPE = Recipe(
    name="us8k",
    order=60,
    read=read,
    pattern_fields={"slice_file_name": "x.wav", "fold": 1},
    eval_splits=frozenset(),
    classification=Classification(multi_label=False, primary_metric="accuracy"),
)
