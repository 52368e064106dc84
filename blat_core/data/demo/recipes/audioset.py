"""The demo corpus's AudioSet: its clips planned and its metadata written in the real format
(read back by the real recipe, `blat_core/data/datasets/audioset.py`)."""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets.audioset import SPLITS
from blat_core.data.demo import labels
from blat_core.data.demo.planning import youtube_id
from blat_core.data.demo.recipes import DemoRecipe
from blat_core.data.demo.sounds import EVENTS
from blat_core.data.demo.writers import mids, write


def plan_demo(planner, shared: dict) -> None:
    """AudioSet clips; reserves for AudioCaps (train from unbalanced_train, val/test from balanced_train)
    clips that only carry captioned classes, and re-lists VGGSound's overlap clips in unbalanced_train."""
    p, rng = planner.p, planner.rng
    reserved = {
        "unbalanced_train": p.count("audiocaps_train"),
        "balanced_train": p.count("audiocaps_val") + p.count("audiocaps_test"),
    }
    for_audiocaps = []
    for split in SPLITS:
        for i in range(p.count(f"audioset_{split}")):
            ytid, start = youtube_id(rng), float(10 * rng.integers(0, 30))
            captionable = i < reserved.get(split, 0)
            if captionable or rng.random() >= p.uncaptioned_fraction:
                events = planner.events(labels.CAPTIONED, p.max_events)
            else:
                events = planner.events([e.key for e in EVENTS], p.max_events, str(rng.choice(labels.UNCAPTIONED)))
            _clip(planner, split, ytid, start, events)
            if captionable:
                for_audiocaps.append((split, ytid, start, events))
    for ytid, start, key in shared.get("vggsound_in_audioset", []):
        _clip(planner, "unbalanced_train", ytid, float(start), (key,))
    shared["audiocaps_clips"] = for_audiocaps


def _clip(planner, split: str, ytid: str, start: float, events: tuple) -> None:
    p = planner.p
    clip = planner.clip(
        f"audioset/audio/{split}/Y{ytid}.flac", ("yt", ytid), p.sample_rates["audioset"], p.clip_seconds, events
    )
    planner.corpus.add("audioset", clip, {"youtube_id": ytid, "start": start, "split": split})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    folder = root / "audioset" / "metadata"
    classes = [(e.mid, e.display_name) for e in EVENTS] + list(labels.UNUSED_AUDIOSET)
    # The real file quotes every display name (several contain commas).
    write(
        folder / "class_labels_indices.csv",
        "index,mid,display_name\n" + "".join(f'{i},{mid},"{name}"\n' for i, (mid, name) in enumerate(classes)),
    )
    for split in SPLITS:
        lines = [
            (r["youtube_id"], r["start"], r["start"] + plan.seconds, mids(placed[plan.path]))
            for plan, r in rows
            if r["split"] == split
        ]
        header = (
            f"# Segments csv created by the BLAT demo generator (seed {seed})\n"
            f"# num_ytids={len(lines)}, num_segs={len(lines)}, num_unique_labels={len(classes)}, "
            f"num_positive_labels={sum(len(m) for *_, m in lines)}\n"
            "# YTID, start_seconds, end_seconds, positive_labels\n"
        )
        body = "".join(f'{y}, {s:.3f}, {e:.3f}, "{",".join(m)}"\n' for y, s, e, m in lines)
        write(folder / f"{split}_segments.csv", header + body)


DEMO = DemoRecipe(
    name="audioset",
    plan=plan_demo,
    write=write_demo,
    order=20,
    sizes=("audioset_balanced_train", "audioset_unbalanced_train", "audioset_eval"),
)
