"""FSD50K (Fonseca et al. 2022): Freesound clips of variable length with AudioSet-ontology labels,
dev (train/val) and eval; multi-label classification (Table 5: mAP on eval).

Metadata: FSD50K.ground_truth/{vocabulary,dev,eval}.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    vocab_path = require(meta / "vocabulary.csv", "point prepare.datasets.fsd50k.meta at FSD50K.ground_truth/")
    vocabulary = {fields[1]: fields[2] for _, fields in csv_rows(vocab_path, header=False) if len(fields) == 3}
    result = ReadResult()
    for subset in ("dev", "eval"):
        path = require(meta / f"{subset}.csv", "FSD50K ground truth files are dev.csv and eval.csv")
        for line, fields in csv_rows(path, result=result):
            result.rows_read += 1
            ref = f"{subset}.csv:{line}"
            expected = 4 if subset == "dev" else 3
            if len(fields) != expected or not fields[0]:
                result.problems.append(Problem(ref, fields[0], "malformed_row", f"expected {expected} fields"))
                continue
            names = [n for n in fields[1].split(",") if n]
            for name in (n for n in names if n not in vocabulary):
                result.problems.append(Problem(ref, fields[0], "unknown_label", name))
            known = [n for n in names if n in vocabulary]
            if not known:
                result.problems.append(Problem(ref, fields[0], "no_known_labels", fields[1]))
                continue
            split = fields[3] if subset == "dev" else "eval"
            path_in_audio = pattern.format(fname=fields[0], subset=subset)
            tag_mids = [vocabulary[n] for n in known]
            result.rows.append(
                SourceRow(fields[0], split, path_in_audio, ref, labels=known, tag_mids=tag_mids, tag_names=known)
            )
    return result


RECIPE = Recipe(
    name="fsd50k",
    order=70,
    read=read,
    pattern_fields={"fname": "1", "subset": "dev"},
    eval_splits=frozenset({"eval"}),
    classification=Classification(multi_label=True, primary_metric="mAP", train_splits=("train", "val"),
                                  test_split="eval"),  # fmt: skip
)
