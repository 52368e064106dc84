"""Helpers the recipes' demo writers share: file writing, a clip's captions and its AudioSet mids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blat_core.data.demo.captions import PlacedEvent, write_caption
from blat_core.data.demo.mixing import seed_for
from blat_core.data.demo.sounds import EVENTS_BY_KEY


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def captions(seed: int, placed: list[PlacedEvent], style: str, count: int, *key: object) -> list[str]:
    """`count` captions of one clip, distinct where the phrasings allow it."""
    rng = np.random.default_rng(seed_for(seed, "caption", *key))
    out: list[str] = []
    for _ in range(20 * count):
        caption = write_caption(placed, rng, style)
        if caption not in out:
            out.append(caption)
        if len(out) == count:
            return out
    return (out * count)[:count]


def mids(placed: list[PlacedEvent]) -> list[str]:
    return sorted({EVENTS_BY_KEY[e.key].mid for e in placed})
