"""The demo corpus's AudioCaps v1: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/audiocaps.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.writers import captions, write


def plan_demo(planner, shared: dict) -> None:
    """The same YouTube clips as AudioSet (same seed: the same sound), under AudioCaps' names."""
    p = planner.p
    clips = shared["audiocaps_clips"]
    balanced = [c for c in clips if c[0] == "balanced_train"]
    splits = [("train", c) for c in clips if c[0] == "unbalanced_train"]
    splits += [("val", c) for c in balanced[: p.count("audiocaps_val")]]
    splits += [("test", c) for c in balanced[p.count("audiocaps_val") :]]
    for split, (_, ytid, start, events) in splits:
        path = f"audiocaps/audio/{split}/{ytid}_{int(start)}.wav"
        clip = planner.clip(path, ("yt", ytid), p.sample_rates["audiocaps"], p.clip_seconds, events)
        planner.corpus.add("audiocaps", clip, {"youtube_id": ytid, "start": int(start), "split": split})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    audiocap_id = 90_000
    for split, per_clip in (("train", 1), ("val", 5), ("test", 5)):
        lines = []
        for plan, r in rows:
            if r["split"] != split:
                continue
            for caption in captions(seed, placed[plan.path], "audiocaps", per_clip, "audiocaps", r["youtube_id"]):
                audiocap_id += 1
                lines.append([audiocap_id, r["youtube_id"], r["start"], caption])
        header = ["audiocap_id", "youtube_id", "start_time", "caption"]
        write(root / "audiocaps" / "metadata" / f"{split}.csv", csv_text(lines, header))


DEMO = DemoRecipe(
    name="audiocaps",
    plan=plan_demo,
    write=write_demo,
    order=30,
    sizes=("audiocaps_train", "audiocaps_val", "audiocaps_test"),
)
