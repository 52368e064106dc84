"""The demo corpus's plan before rendering: one seeded generator that each dataset recipe draws its
clips from in turn (`DemoRecipe.plan`), and the rows it records for the metadata writers."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

from blat_core.data.demo.mixing import ClipPlan, seed_for


@dataclass
class Corpus:
    """Plans for every audio file plus the per-dataset metadata rows, before rendering."""

    plans: list[ClipPlan] = field(default_factory=list)
    rows: dict[str, list] = field(default_factory=dict)

    def add(self, dataset: str, plan: ClipPlan, row: dict) -> None:
        self.plans.append(plan)
        self.rows.setdefault(dataset, []).append((plan, row))


def youtube_id(rng: np.random.Generator) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(rng.choice(list(alphabet), 11))


class Planner:
    """Draws every clip of the corpus from one seeded generator, dataset by dataset (`p`: DemoParams)."""

    def __init__(self, p):
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
