"""The demo corpus's VGGSound: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/vggsound.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.demo import labels
from blat_core.data.demo.planning import youtube_id
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import write


def plan_demo(planner, shared: dict) -> None:
    """VGGSound clips; a tenth of its test clips are re-listed in AudioSet's training segments."""
    p, rng, overlap = planner.p, planner.rng, []
    for split in ("train", "test"):
        for _ in range(p.count(f"vggsound_{split}")):
            ytid, start, key = youtube_id(rng), int(rng.integers(0, 30)), str(rng.choice(list(labels.VGGSOUND)))
            path = f"vggsound/audio/{ytid}_{start:06d}.flac"
            clip = planner.clip(path, ("yt", ytid), p.sample_rates["vggsound"], p.clip_seconds, (key,))
            row = {"youtube_id": ytid, "start": start, "label": labels.VGGSOUND[key], "split": split}
            planner.corpus.add("vggsound", clip, row)
            if split == "test" and len(overlap) < max(1, p.count("vggsound_test") // 10):
                overlap.append((ytid, start, key))
    shared["vggsound_in_audioset"] = overlap


def write_demo(rows, placed, root: Path, seed: int) -> None:
    lines = ([r["youtube_id"], r["start"], r["label"], r["split"]] for _, r in rows)
    write(root / "vggsound" / "metadata" / "vggsound.csv", csv_text(lines))


DEMO = DemoRecipe(
    name="vggsound",
    plan=plan_demo,
    write=write_demo,
    order=10,
    sizes=("vggsound_train", "vggsound_test"),
)
