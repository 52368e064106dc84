"""The demo corpus's ESC-50: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/esc50.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.demo import labels
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import write


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


DEMO = DemoRecipe(
    name="esc50",
    plan=plan_demo,
    write=write_demo,
    order=60,
    sizes=("esc50_per_class_and_fold",),
)
