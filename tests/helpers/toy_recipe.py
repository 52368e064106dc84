"""A dataset added the way docs/code.md says: `RECIPE` (the reader and its roles, dropped into
blat_core/data/datasets/ as `toy.py`) and `DEMO` (its demo half, blat_core/data/demo/recipes/toy.py) are
everything the library needs (plus `prepare.datasets.toy` and `demo.sizes/sample_rates` params; the two
live in one file here only because this is a test helper). tests/test_recipes.py registers both and runs
them from demo files to a classification dataset.

Toy: one label per clip, `toy.csv` with header `file,label,split`, audio under `clips/<split>/`.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require
from blat_core.data.demo.recipes import DemoRecipe


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "toy.csv", "point prepare.datasets.toy.meta at the folder holding toy.csv")
    result = ReadResult()
    for line, fields in csv_rows(path):
        result.rows_read += 1
        if len(fields) != 3 or fields[2] not in ("train", "test"):
            result.problems.append(Problem(f"toy.csv:{line}", fields[0], "malformed_row", "expected file,label,split"))
            continue
        name, label, split = fields
        source = pattern.format(file=name, split=split)
        result.rows.append(SourceRow(Path(name).stem, split, source, f"toy.csv:{line}", labels=[label]))
    return result


def plan_demo(planner, shared: dict) -> None:
    from blat_core.data.demo import labels

    p = planner.p
    for split in ("train", "test"):
        for i in range(p.count(f"toy_{split}")):
            key = str(planner.rng.choice(list(labels.ESC50)))
            name = f"{split}_{i:03d}.wav"
            clip = planner.clip(f"toy/clips/{split}/{name}", ("toy", split, i), p.sample_rates["toy"], 2.0, (key,))
            planner.corpus.add("toy", clip, {"file": name, "label": labels.ESC50[key][0], "split": split})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    from blat_core.data.demo.writers import write

    write(root / "toy" / "toy.csv", csv_text(([r["file"], r["label"], r["split"]] for _, r in rows),
                                             ["file", "label", "split"]))  # fmt: skip


RECIPE = Recipe(
    name="toy",
    order=90,
    read=read,
    pattern_fields={"file": "x.wav", "split": "train"},
    eval_splits=frozenset({"test"}),
    classification=Classification(multi_label=False, primary_metric="accuracy", train_splits=("train",),
                                  test_split="test"),  # fmt: skip
)

DEMO = DemoRecipe(name="toy", plan=plan_demo, write=write_demo, order=90, sizes=("toy_train", "toy_test"))
