"""VGGSound (Chen et al. 2020): ten-second YouTube clips, 309 classes, train/test; single-label
classification (Table 5: accuracy and mAP on test). Some of its test clips sit in AudioSet's training
segments: the leakage guard flags them by YouTube id.

Metadata: vggsound.csv (no header: youtube_id, start, label, train|test).
"""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "vggsound.csv", "point prepare.datasets.vggsound.meta at the folder holding vggsound.csv")
    result = ReadResult()
    for line, fields in csv_rows(path, header=False, result=result):
        result.rows_read += 1
        try:
            ytid, start, label, split = fields[0], int(fields[1]), fields[2], fields[3]
            if len(fields) != 4 or split not in ("train", "test"):
                raise ValueError(f"expected youtube_id,start,label,train|test; got {fields}")
        except (ValueError, IndexError) as error:
            result.problems.append(Problem(f"vggsound.csv:{line}", fields[0], "malformed_row", str(error)))
            continue
        ref = f"vggsound.csv:{line}"
        path_in_audio = pattern.format(youtube_id=ytid, start=start)
        result.rows.append(SourceRow(f"{ytid}_{start:06d}", split, path_in_audio, ref, youtube_id=ytid, labels=[label]))
    return result


def eval_ids(meta: Path) -> list[tuple[str, str]]:
    return [(fields[0], "vggsound/test") for _, fields in csv_rows(meta / "vggsound.csv", header=False)
            if len(fields) == 4 and fields[3] == "test"]  # fmt: skip


RECIPE = Recipe(
    name="vggsound",
    order=80,
    read=read,
    pattern_fields={"youtube_id": "x", "start": 0},
    eval_splits=frozenset({"test"}),
    youtube_eval_ids=eval_ids,
    classification=Classification(multi_label=False, primary_metric="accuracy", train_splits=("train",),
                                  test_split="test"),  # fmt: skip
)
