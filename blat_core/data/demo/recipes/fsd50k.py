"""The demo corpus's FSD50K: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/fsd50k.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.demo import labels
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import write


def plan_demo(planner, shared: dict) -> None:
    """Variable-length clips with one or two labelled events; dev (train/val) and eval."""
    p, rng, fname = planner.p, planner.rng, 10_000
    for subset, split_options in (("dev", ("train", "train", "train", "val")), ("eval", ("eval",))):
        for _ in range(p.count(f"fsd50k_{subset}")):
            fname += int(rng.integers(1, 50))
            events = planner.events(tuple(labels.FSD50K), min(p.max_events, 2))
            seconds = float(rng.uniform(0.3, 1.0)) * p.clip_seconds
            path = f"fsd50k/FSD50K.{subset}_audio/{fname}.wav"
            clip = planner.clip(path, ("fsd50k", fname), p.sample_rates["fsd50k"], seconds, events)
            planner.corpus.add("fsd50k", clip, {"fname": fname, "subset": subset, "split": rng.choice(split_options)})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    folder = root / "fsd50k" / "FSD50K.ground_truth"
    vocabulary = sorted(labels.FSD50K.values())
    write(folder / "vocabulary.csv", csv_text([i, label, mid] for i, (label, mid) in enumerate(vocabulary)))
    for subset in ("dev", "eval"):
        lines = []
        for plan, r in rows:
            if r["subset"] != subset:
                continue
            pairs = sorted(labels.FSD50K[e.key] for e in placed[plan.path])
            line = [r["fname"], ",".join(p[0] for p in pairs), ",".join(p[1] for p in pairs)]
            lines.append(line + ([r["split"]] if subset == "dev" else []))
        header = ["fname", "labels", "mids"] + (["split"] if subset == "dev" else [])
        write(folder / f"{subset}.csv", csv_text(lines, header))


DEMO = DemoRecipe(
    name="fsd50k",
    plan=plan_demo,
    write=write_demo,
    order=80,
    sizes=("fsd50k_dev", "fsd50k_eval"),
)
