"""The demo corpus's Clotho v2: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/clotho.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.datasets.clotho import SPLITS
from blat_core.data.demo import labels
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import captions, write


def plan_demo(planner, shared: dict) -> None:
    """Longer Freesound-like clips (file names with spaces), five longer captions each."""
    p, rng = planner.p, planner.rng
    words = ["Rainy", "Urban", "Quiet", "Busy", "Morning", "Evening", "Kitchen", "Park", "Street", "Harbour"]
    for split in SPLITS:
        for i in range(p.count(f"clotho_{split}")):
            name = f"{rng.choice(words)} {rng.choice(words).lower()} recording {split[:3]}{i:04d}.wav"
            events = planner.events(labels.CAPTIONED, p.max_events)
            clip = planner.clip(
                f"clotho/audio/{split}/{name}", ("clotho", split, i), p.sample_rates["clotho"], p.clotho_seconds, events
            )
            planner.corpus.add("clotho", clip, {"file_name": name, "split": split})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    for split in SPLITS:
        lines = [
            [r["file_name"], *captions(seed, placed[plan.path], "clotho", 5, "clotho", r["file_name"])]
            for plan, r in rows
            if r["split"] == split
        ]
        header = ["file_name"] + [f"caption_{k}" for k in range(1, 6)]
        write(root / "clotho" / "metadata" / f"clotho_captions_{split}.csv", csv_text(lines, header))


DEMO = DemoRecipe(
    name="clotho",
    plan=plan_demo,
    write=write_demo,
    order=40,
    sizes=("clotho_development", "clotho_validation", "clotho_evaluation"),
)
