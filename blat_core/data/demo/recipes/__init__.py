"""The demo half of each dataset: how the demo corpus plans its clips and writes its metadata in the real
format, one module per dataset beside its real recipe (`blat_core/data/datasets/<name>.py`).

Only `make_demo` runs this code: the real recipes never import it, so editing a demo sound or writer
re-runs `make_demo` (and whatever its changed files feed), never the stages that read real data.
A module defines `DEMO = DemoRecipe(...)`; this package finds them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoRecipe:
    """One dataset's demo: `plan(planner, shared)` draws its clips (`shared` carries what one dataset plans
    for another), `write(rows, placed, root, seed)` writes its metadata; `order` is its turn at the one
    seeded generator, `sizes` its keys in `demo.sizes`."""

    name: str
    plan: Callable[..., None]
    write: Callable[..., None]
    order: int
    sizes: tuple[str, ...]


def _discover() -> dict[str, DemoRecipe]:
    found = [importlib.import_module(f"{__name__}.{m.name}").DEMO for m in pkgutil.iter_modules(__path__)]
    return {demo.name: demo for demo in sorted(found, key=lambda d: d.order)}


DEMOS: dict[str, DemoRecipe] = _discover()
