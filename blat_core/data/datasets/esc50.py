"""ESC-50 (Piczak 2015): 2,000 five-second clips, 50 classes, five folds; single-label classification
(Table 5: accuracy, the mean over the folds).

Metadata: meta/esc50.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import ReadResult, read_folds, require
from blat_core.data.demo import labels
from blat_core.data.demo.writers import write


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "esc50.csv", "point prepare.datasets.esc50.meta at ESC-50's meta/ folder")
    return read_folds(path, pattern, "filename", (0, 1, 3))


# ---------------------------------------------------------------- demo
def plan_demo(planner, shared: dict) -> None:
    """One labelled event per clip, five folds, ESC-50 file naming."""
    p, rng = planner.p, planner.rng
    for key, (category, target) in labels.ESC50.items():
        for fold in range(1, 6):
            for take in range(p.count("esc50_per_class_and_fold")):
                source, take_letter = int(rng.integers(10_000, 300_000)), "ABCDEFGH"[take % 8]
                name = f"{fold}-{source}-{take_letter}-{target}.wav"
                clip = planner.clip(
                    f"esc50/audio/{name}", ("esc50", name), p.sample_rates["esc50"], p.clip_seconds, (key,)
                )
                row = {"filename": name, "fold": fold, "target": target, "category": category, "src_file": source,
                       "take": take_letter}  # fmt: skip
                planner.corpus.add("esc50", clip, row)


def write_demo(rows, placed, root: Path, seed: int) -> None:
    lines = ([r["filename"], r["fold"], r["target"], r["category"], r["category"] in labels.ESC10, r["src_file"],
              r["take"]] for _, r in rows)  # fmt: skip
    header = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    write(root / "esc50" / "meta" / "esc50.csv", csv_text(lines, header))


RECIPE = Recipe(
    name="esc50",
    order=50,
    read=read,
    pattern_fields={"filename": "x.wav", "fold": 1},
    eval_splits=frozenset(),
    plan_demo=plan_demo,
    write_demo=write_demo,
    demo_order=60,
    demo_sizes=("esc50_per_class_and_fold",),
    classification=Classification(multi_label=False, primary_metric="accuracy"),
)
