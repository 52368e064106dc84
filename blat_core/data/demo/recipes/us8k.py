"""The demo corpus's UrbanSound8K: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/us8k.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.demo import labels
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import write


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


DEMO = DemoRecipe(
    name="us8k",
    plan=plan_demo,
    write=write_demo,
    order=70,
    sizes=("us8k_per_class_and_fold",),
)
