"""UrbanSound8K (Salamon et al. 2014): 8,732 clips of at most 4 s, 10 classes, ten folds (some files
stereo at 44.1 kHz); single-label classification (Table 5: accuracy, the mean over the folds).

Metadata: metadata/UrbanSound8K.csv; audio in fold1..fold10.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import ReadResult, read_folds, require
from blat_core.data.demo import labels
from blat_core.data.demo.writers import write


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "UrbanSound8K.csv", "point prepare.datasets.us8k.meta at UrbanSound8K's metadata/ folder")
    return read_folds(path, pattern, "slice_file_name", (0, 5, 7))


# ---------------------------------------------------------------- demo
def plan_demo(planner, shared: dict) -> None:
    """One labelled event per clip (at most 4 s), ten fold folders, some stereo at 44.1 kHz."""
    p, rng = planner.p, planner.rng
    for key, (label, class_id) in labels.US8K.items():
        for fold in range(1, 11):
            for occurrence in range(p.count("us8k_per_class_and_fold")):
                fs_id, stereo = int(rng.integers(1000, 200_000)), bool(rng.random() < 0.3)
                name = f"{fs_id}-{class_id}-{occurrence}-0.wav"
                clip = planner.clip(
                    f"us8k/audio/fold{fold}/{name}",
                    ("us8k", name, fold),
                    44100 if stereo else p.sample_rates["us8k"],
                    min(p.clip_seconds, 4.0),
                    (key,),
                    channels=2 if stereo else 1,
                )
                start = float(rng.uniform(0, 60))
                salience = int(rng.integers(1, 3))
                row = {"slice_file_name": name, "fsID": fs_id, "start": start, "end": start + clip.seconds,
                       "salience": salience, "fold": fold, "classID": class_id, "class": label}  # fmt: skip
                planner.corpus.add("us8k", clip, row)


def write_demo(rows, placed, root: Path, seed: int) -> None:
    lines = ([r["slice_file_name"], r["fsID"], f"{r['start']:.6f}", f"{r['end']:.6f}", r["salience"], r["fold"],
              r["classID"], r["class"]] for _, r in rows)  # fmt: skip
    header = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
    write(root / "us8k" / "metadata" / "UrbanSound8K.csv", csv_text(lines, header))


RECIPE = Recipe(
    name="us8k",
    order=60,
    read=read,
    pattern_fields={"slice_file_name": "x.wav", "fold": 1},
    eval_splits=frozenset(),
    plan_demo=plan_demo,
    write_demo=write_demo,
    demo_order=70,
    demo_sizes=("us8k_per_class_and_fold",),
    classification=Classification(multi_label=False, primary_metric="accuracy"),
)
