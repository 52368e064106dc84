"""Clotho v2 (Drossos et al. 2020): Freesound clips of 15-30 s with five captions each; a stage-2
pre-training source and a retrieval / captioning target (evaluation split).

Metadata: clotho_captions_{development,validation,evaluation}.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets import Recipe
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require

SPLITS = ("development", "validation", "evaluation")


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    result = ReadResult()
    for split in SPLITS:
        path = require(
            meta / f"clotho_captions_{split}.csv",
            "Clotho v2 caption files are clotho_captions_{development,validation,evaluation}.csv",
        )
        for line, fields in csv_rows(path, result=result):
            result.rows_read += 1
            ref = f"{path.name}:{line}"
            texts = [c.strip() for c in fields[1:] if c.strip()]
            if len(fields) != 6 or len(texts) != 5:
                detail = f"expected file_name and 5 captions, got {len(fields)} fields"
                result.problems.append(Problem(ref, fields[0], "malformed_row", detail))
                continue
            result.rows.append(
                SourceRow(fields[0], split, pattern.format(file_name=fields[0], split=split), ref, captions=texts)
            )
    return result


RECIPE = Recipe(
    name="clotho",
    order=30,
    read=read,
    pattern_fields={"file_name": "x.wav", "split": "development"},
    eval_splits=frozenset({"validation", "evaluation"}),
    retrieval_target=True,
)
