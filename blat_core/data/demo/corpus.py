"""Plan and write the demo corpus: eight datasets in their real on-disk formats (SPEC §4–§5).

AudioCaps clips are AudioSet clips (same YouTube ids, AudioCaps val/test in AudioSet's training
segments so the leakage guard has work); some AudioSet classes never occur in the captioned sets;
some VGGSound test clips also sit in AudioSet's training segments.
"""

from __future__ import annotations

import os
import string
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from blat_core.data.demo import labels
from blat_core.data.demo.captions import PlacedEvent
from blat_core.data.demo.mixing import ClipPlan, render_to_file, seed_for
from blat_core.data.demo.sounds import EVENTS
from blat_core.data.demo.writers import write_metadata
from blat_core.params import ParamsError, bounded
from blat_core.runtime import die_with_parent


@dataclass
class DemoSizes:
    """Clips per split (before `demo.scale`)."""

    audioset_balanced_train: int = bounded(ge=1)
    audioset_unbalanced_train: int = bounded(ge=1)
    audioset_eval: int = bounded(ge=1)
    audiocaps_train: int = bounded(ge=1)
    audiocaps_val: int = bounded(ge=1)
    audiocaps_test: int = bounded(ge=1)
    clotho_development: int = bounded(ge=1)
    clotho_validation: int = bounded(ge=1)
    clotho_evaluation: int = bounded(ge=1)
    macs: int = bounded(ge=1)
    esc50_per_class_and_fold: int = bounded(ge=1)
    us8k_per_class_and_fold: int = bounded(ge=1)
    fsd50k_dev: int = bounded(ge=1)
    fsd50k_eval: int = bounded(ge=1)
    vggsound_train: int = bounded(ge=1)
    vggsound_test: int = bounded(ge=1)


@dataclass
class DemoRates:
    """Sample rate each demo dataset's files are written at (prepare resamples them)."""

    audioset: int = bounded(ge=8000)
    audiocaps: int = bounded(ge=8000)
    clotho: int = bounded(ge=8000)
    macs: int = bounded(ge=8000)
    esc50: int = bounded(ge=8000)
    us8k: int = bounded(ge=8000)
    fsd50k: int = bounded(ge=8000)
    vggsound: int = bounded(ge=8000)


@dataclass
class DemoParams:
    """The `demo` section of params.yaml."""

    seed: int
    scale: float = bounded(gt=0.0)
    clip_seconds: float = bounded(gt=0.5)
    clotho_seconds: float = bounded(gt=0.5)
    snr_db_min: float = bounded(ge=-10.0)
    snr_db_max: float = bounded(le=60.0)
    background_dbfs_min: float = bounded(ge=-90.0)
    background_dbfs_max: float = bounded(le=-10.0)
    max_events: int = bounded(ge=1, le=3)
    uncaptioned_fraction: float = bounded(ge=0.0, le=1.0)
    sizes: DemoSizes
    sample_rates: DemoRates

    def count(self, name: str) -> int:
        """Size of one split after scaling (at least 1)."""
        return max(1, int(round(getattr(self.sizes, name) * self.scale)))


@dataclass
class Corpus:
    """Plans for every audio file plus the per-dataset metadata rows, before rendering."""

    plans: list[ClipPlan] = field(default_factory=list)
    rows: dict[str, list] = field(default_factory=dict)

    def add(self, dataset: str, plan: ClipPlan, row: dict) -> None:
        self.plans.append(plan)
        self.rows.setdefault(dataset, []).append((plan, row))


def _youtube_id(rng: np.random.Generator) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(rng.choice(list(alphabet), 11))


def plan_corpus(p: DemoParams) -> Corpus:
    """Decide every clip: ids, splits, events and file names (no audio rendered yet)."""
    _check(p)
    planner = _Planner(p)
    vggsound_in_audioset = planner.vggsound()
    audiocaps_clips = planner.audioset(vggsound_in_audioset)
    planner.audiocaps(audiocaps_clips)
    planner.clotho()
    planner.macs()
    planner.esc50()
    planner.us8k()
    planner.fsd50k()
    return planner.corpus


class _Planner:
    """Draws every clip of the corpus from one seeded generator, dataset by dataset."""

    def __init__(self, p: DemoParams):
        self.p, self.corpus = p, Corpus()
        self.rng = np.random.default_rng(seed_for(p.seed, "plan"))

    def clip(self, path: str, key: tuple, rate: int, seconds: float, events: tuple, channels: int = 1) -> ClipPlan:
        p = self.p
        snr, background = (p.snr_db_min, p.snr_db_max), (p.background_dbfs_min, p.background_dbfs_max)
        return ClipPlan(path, seed_for(p.seed, *key), rate, seconds, events, snr, background, channels)

    def events(self, pool: list[str] | tuple[str, ...], max_events: int, required: str | None = None) -> tuple:
        count = int(self.rng.integers(1, max_events + 1))
        keys = [required] if required else []
        while len(keys) < count:
            key = str(self.rng.choice(pool))
            if key not in keys:
                keys.append(key)
        return tuple(keys)

    def vggsound(self) -> list[tuple[str, int, str]]:
        """VGGSound clips; returns the tenth of its test clips that AudioSet's training segments also hold."""
        p, rng, overlap = self.p, self.rng, []
        for split in ("train", "test"):
            for _ in range(p.count(f"vggsound_{split}")):
                ytid, start, key = _youtube_id(rng), int(rng.integers(0, 30)), str(rng.choice(list(labels.VGGSOUND)))
                path = f"vggsound/audio/{ytid}_{start:06d}.flac"
                clip = self.clip(path, ("yt", ytid), p.sample_rates.vggsound, p.clip_seconds, (key,))
                row = {"youtube_id": ytid, "start": start, "label": labels.VGGSOUND[key], "split": split}
                self.corpus.add("vggsound", clip, row)
                if split == "test" and len(overlap) < max(1, p.count("vggsound_test") // 10):
                    overlap.append((ytid, start, key))
        return overlap

    def audioset(self, vggsound_clips: list[tuple[str, int, str]]) -> list[tuple]:
        """AudioSet clips; returns those reserved for AudioCaps (train from unbalanced_train, val/test
        from balanced_train), which only carry captioned classes."""
        p, rng = self.p, self.rng
        reserved = {
            "unbalanced_train": p.count("audiocaps_train"),
            "balanced_train": p.count("audiocaps_val") + p.count("audiocaps_test"),
        }
        for_audiocaps = []
        for split in ("balanced_train", "unbalanced_train", "eval"):
            for i in range(p.count(f"audioset_{split}")):
                ytid, start = _youtube_id(rng), float(10 * rng.integers(0, 30))
                captionable = i < reserved.get(split, 0)
                if captionable or rng.random() >= p.uncaptioned_fraction:
                    events = self.events(labels.CAPTIONED, p.max_events)
                else:
                    events = self.events([e.key for e in EVENTS], p.max_events, str(rng.choice(labels.UNCAPTIONED)))
                self._audioset_clip(split, ytid, start, events)
                if captionable:
                    for_audiocaps.append((split, ytid, start, events))
        for ytid, start, key in vggsound_clips:
            self._audioset_clip("unbalanced_train", ytid, float(start), (key,))
        return for_audiocaps

    def _audioset_clip(self, split: str, ytid: str, start: float, events: tuple) -> None:
        p = self.p
        clip = self.clip(
            f"audioset/audio/{split}/Y{ytid}.flac", ("yt", ytid), p.sample_rates.audioset, p.clip_seconds, events
        )
        self.corpus.add("audioset", clip, {"youtube_id": ytid, "start": start, "split": split})

    def audiocaps(self, clips: list[tuple]) -> None:
        """The same YouTube clips as AudioSet (same seed: the same sound), under AudioCaps' names."""
        p = self.p
        balanced = [c for c in clips if c[0] == "balanced_train"]
        splits = [("train", c) for c in clips if c[0] == "unbalanced_train"]
        splits += [("val", c) for c in balanced[: p.count("audiocaps_val")]]
        splits += [("test", c) for c in balanced[p.count("audiocaps_val") :]]
        for split, (_, ytid, start, events) in splits:
            path = f"audiocaps/audio/{split}/{ytid}_{int(start)}.wav"
            clip = self.clip(path, ("yt", ytid), p.sample_rates.audiocaps, p.clip_seconds, events)
            self.corpus.add("audiocaps", clip, {"youtube_id": ytid, "start": int(start), "split": split})

    def clotho(self) -> None:
        """Longer Freesound-like clips (file names with spaces), five longer captions each."""
        p, rng = self.p, self.rng
        words = ["Rainy", "Urban", "Quiet", "Busy", "Morning", "Evening", "Kitchen", "Park", "Street", "Harbour"]
        for split in ("development", "validation", "evaluation"):
            for i in range(p.count(f"clotho_{split}")):
                name = f"{rng.choice(words)} {rng.choice(words).lower()} recording {split[:3]}{i:04d}.wav"
                events = self.events(labels.CAPTIONED, p.max_events)
                clip = self.clip(
                    f"clotho/audio/{split}/{name}",
                    ("clotho", split, i),
                    p.sample_rates.clotho,
                    p.clotho_seconds,
                    events,
                )
                self.corpus.add("clotho", clip, {"file_name": name, "split": split})

    def macs(self) -> None:
        """Urban scenes (TAU file naming) with captions and tags from several annotators."""
        p, rng = self.p, self.rng
        cities = ["barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague"]
        scenes = ["street_traffic", "public_square", "park", "metro_station", "shopping_mall"]
        for i in range(p.count("macs")):
            name = f"{rng.choice(scenes)}-{rng.choice(cities)}-{1000 + i}-{40000 + 10 * i}-a.wav"
            events = self.events(tuple(labels.MACS), min(p.max_events, 2))
            clip = self.clip(f"macs/audio/{name}", ("macs", i), p.sample_rates.macs, p.clip_seconds, events)
            self.corpus.add("macs", clip, {"filename": name})

    def esc50(self) -> None:
        """One labelled event per clip, five folds, ESC-50 file naming."""
        p, rng = self.p, self.rng
        for key, (category, target) in labels.ESC50.items():
            for fold in range(1, 6):
                for take in range(p.count("esc50_per_class_and_fold")):
                    source, take_letter = int(rng.integers(10_000, 300_000)), "ABCDEFGH"[take % 8]
                    name = f"{fold}-{source}-{take_letter}-{target}.wav"
                    clip = self.clip(
                        f"esc50/audio/{name}", ("esc50", name), p.sample_rates.esc50, p.clip_seconds, (key,)
                    )
                    row = {
                        "filename": name,
                        "fold": fold,
                        "target": target,
                        "category": category,
                        "src_file": source,
                        "take": take_letter,
                    }
                    self.corpus.add("esc50", clip, row)

    def us8k(self) -> None:
        """One labelled event per clip (at most 4 s), ten fold folders, some stereo at 44.1 kHz."""
        p, rng = self.p, self.rng
        for key, (label, class_id) in labels.US8K.items():
            for fold in range(1, 11):
                for occurrence in range(p.count("us8k_per_class_and_fold")):
                    fs_id, stereo = int(rng.integers(1000, 200_000)), bool(rng.random() < 0.3)
                    name = f"{fs_id}-{class_id}-{occurrence}-0.wav"
                    clip = self.clip(
                        f"us8k/audio/fold{fold}/{name}",
                        ("us8k", name, fold),
                        44100 if stereo else p.sample_rates.us8k,
                        min(p.clip_seconds, 4.0),
                        (key,),
                        channels=2 if stereo else 1,
                    )
                    start = float(rng.uniform(0, 60))
                    row = {
                        "slice_file_name": name,
                        "fsID": fs_id,
                        "start": start,
                        "end": start + clip.seconds,
                        "salience": int(rng.integers(1, 3)),
                        "fold": fold,
                        "classID": class_id,
                        "class": label,
                    }
                    self.corpus.add("us8k", clip, row)

    def fsd50k(self) -> None:
        """Variable-length clips with one or two labelled events; dev (train/val) and eval."""
        p, rng, fname = self.p, self.rng, 10_000
        for subset, split_options in (("dev", ("train", "train", "train", "val")), ("eval", ("eval",))):
            for _ in range(p.count(f"fsd50k_{subset}")):
                fname += int(rng.integers(1, 50))
                events = self.events(tuple(labels.FSD50K), min(p.max_events, 2))
                seconds = float(rng.uniform(0.3, 1.0)) * p.clip_seconds
                clip = self.clip(
                    f"fsd50k/FSD50K.{subset}_audio/{fname}.wav",
                    ("fsd50k", fname),
                    p.sample_rates.fsd50k,
                    seconds,
                    events,
                )
                self.corpus.add("fsd50k", clip, {"fname": fname, "subset": subset, "split": rng.choice(split_options)})


def _check(p: DemoParams) -> None:
    if p.count("audiocaps_train") > p.count("audioset_unbalanced_train"):
        raise ParamsError(
            "demo.sizes.audiocaps_train must not exceed demo.sizes.audioset_unbalanced_train "
            "(AudioCaps train clips are AudioSet unbalanced_train clips)"
        )
    if p.count("audiocaps_val") + p.count("audiocaps_test") > p.count("audioset_balanced_train"):
        raise ParamsError(
            "demo.sizes.audiocaps_val + audiocaps_test must not exceed "
            "demo.sizes.audioset_balanced_train (they are AudioSet balanced_train clips)"
        )
    if p.snr_db_min > p.snr_db_max or p.background_dbfs_min > p.background_dbfs_max:
        raise ParamsError("demo: each *_min must not exceed its *_max (snr_db, background_dbfs)")


def render_corpus(corpus: Corpus, root: Path, workers: int) -> dict[str, list[PlacedEvent]]:
    """Render every planned file under `root`, in parallel; returns the placed events per path."""
    placed = {}
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        results = pool.map(render_to_file, corpus.plans, [str(root)] * len(corpus.plans), chunksize=8)
        for plan, events in tqdm(
            zip(corpus.plans, results, strict=True), total=len(corpus.plans), desc="demo audio", mininterval=2.0
        ):
            placed[plan.path] = events
    return placed


def build_corpus(p: DemoParams, root: Path, workers: int | None = None) -> dict[str, int]:
    """Plan, render and write the whole demo corpus into `root`; returns file counts per dataset."""
    corpus = plan_corpus(p)
    placed = render_corpus(corpus, root, workers or os.cpu_count() or 1)
    write_metadata(corpus, placed, root, p.seed)
    return {name: len(rows) for name, rows in sorted(corpus.rows.items())}
