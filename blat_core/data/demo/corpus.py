"""Plan and write the demo corpus: eight datasets in their real on-disk formats (SPEC §4–§5).

AudioCaps clips are AudioSet clips (same YouTube ids, AudioCaps val/test in AudioSet's training
segments so the leakage guard has work); some AudioSet classes never occur in the captioned sets;
some VGGSound test clips also sit in AudioSet's training segments.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from blat_core.data.datasets import RECIPES
from blat_core.data.demo.captions import PlacedEvent
from blat_core.data.demo.mixing import render_to_file
from blat_core.data.demo.planning import Corpus, Planner
from blat_core.data.demo.recipes import DEMOS
from blat_core.params import ParamsError, bounded
from blat_core.runtime import die_with_parent


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
    sizes: dict[str, int]  # clips per split, before `scale`: the keys the demo recipes' `sizes` name
    sample_rates: dict[str, int]  # Hz each dataset's files are written at (prepare resamples them)

    def __post_init__(self):
        """`sizes` and `sample_rates` are as strict as a dataclass: exactly the recipes' keys, in range."""
        expected_sizes = {key for demo in DEMOS.values() for key in demo.sizes}
        for section, found, expected, low in (("sizes", self.sizes, expected_sizes, 1),
                                              ("sample_rates", self.sample_rates, set(RECIPES), 8000)):  # fmt: skip
            for key in sorted(set(found) - expected):
                raise ParamsError(f"demo.{section}.{key}: unknown key; expected one of {', '.join(sorted(expected))}")
            for key in sorted(expected - set(found)):
                raise ParamsError(f"demo.{section}.{key} is missing")
            for key, value in found.items():
                if not isinstance(value, int) or isinstance(value, bool) or value < low:
                    raise ParamsError(f"demo.{section}.{key}: expected an integer >= {low}, got {value!r}")

    def count(self, name: str) -> int:
        """Size of one split after scaling (at least 1)."""
        return max(1, int(round(self.sizes[name] * self.scale)))


def plan_corpus(p: DemoParams) -> Corpus:
    """Decide every clip: ids, splits, events and file names (no audio rendered yet). The demo recipes
    draw from one generator in their `order`; `shared` carries what one plans for another (AudioSet's
    clips that AudioCaps captions, VGGSound's clips that AudioSet re-lists)."""
    _check(p)
    planner, shared = Planner(p), {}
    for demo in DEMOS.values():  # in their order
        demo.plan(planner, shared)
    return planner.corpus


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
    for name in RECIPES:
        DEMOS[name].write(corpus.rows[name], placed, root, p.seed)
    return {name: len(rows) for name, rows in sorted(corpus.rows.items())}
