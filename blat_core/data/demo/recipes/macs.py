"""The demo corpus's MACS: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/macs.py`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from blat_core.data.demo import labels
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import captions, write


def plan_demo(planner, shared: dict) -> None:
    """Urban scenes (TAU file naming) with captions and tags from several annotators."""
    p, rng = planner.p, planner.rng
    cities = ["barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague"]
    scenes = ["street_traffic", "public_square", "park", "metro_station", "shopping_mall"]
    for i in range(p.count("macs")):
        name = f"{rng.choice(scenes)}-{rng.choice(cities)}-{1000 + i}-{40000 + 10 * i}-a.wav"
        events = planner.events(tuple(labels.MACS), min(p.max_events, 2))
        clip = planner.clip(f"macs/audio/{name}", ("macs", i), p.sample_rates["macs"], p.clip_seconds, events)
        planner.corpus.add("macs", clip, {"filename": name})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    files = []
    for plan, r in rows:
        events = placed[plan.path]
        tags = sorted({labels.MACS[e.key] for e in events})
        sentences = captions(seed, events, "audiocaps", 3, "macs", r["filename"])
        annotations = [{"annotator_id": 100 + k, "sentence": s, "tags": list(tags)} for k, s in enumerate(sentences)]
        files.append({"filename": r["filename"], "annotations": annotations})
    write(root / "macs" / "metadata" / "MACS.yaml", yaml.safe_dump({"files": files}, sort_keys=False))


DEMO = DemoRecipe(
    name="macs",
    plan=plan_demo,
    write=write_demo,
    order=50,
    sizes=("macs",),
)
