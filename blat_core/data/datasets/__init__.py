"""The datasets, one recipe module each (lhotse's recipes are the model): everything the library knows
about a real corpus — its metadata reader, splits and evaluation splits, audio-path placeholders and its
role in the evaluation — lives in `datasets/<name>.py`. How the demo corpus imitates it lives apart, in
`blat_core/data/demo/recipes/<name>.py`: nothing here imports demo code, so the stages that read real
data do not depend on it.

A recipe module defines `RECIPE = Recipe(...)`; this package finds them all, so adding a dataset is
one new module (plus its demo module, its `prepare.datasets.<name>` params and a test).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blat_core.data.datasets.common import ReadResult


@dataclass(frozen=True)
class Classification:
    """How a labelled dataset is scored (SPEC §2): single-label sets report accuracy (and mAP), multi-label
    sets mAP; either over the standard folds (no `test_split`) or on one test split."""

    multi_label: bool
    primary_metric: str  # Table 5's column: "accuracy" or "mAP"
    train_splits: tuple[str, ...] = ()
    test_split: str | None = None  # None: the dataset's folds
    ontology_classes: bool = False  # classes: the prepared ontology (classes.csv), labels: the rows' tag names


@dataclass(frozen=True)
class Recipe:
    """One dataset. `read(meta, pattern, joins)` parses its metadata folder (`joins`: the metadata folders
    of the datasets named in `joins`); `pattern_fields` are the placeholders its `audio_pattern` may use,
    with example values."""

    name: str
    order: int  # its place in listings (params, reports)
    read: Callable[[Path, str, dict[str, Path]], ReadResult]
    pattern_fields: dict[str, Any]
    eval_splits: frozenset[str]  # never used for training
    joins: tuple[str, ...] = ()
    youtube_eval_ids: Callable[[Path], list[tuple[str, str]]] | None = None  # keyed by YouTube id
    retrieval_target: bool = False  # a captioned test set scored by retrieval and captioning
    classification: Classification | None = None
    write_extra: Callable[[Path, Path], None] | None = None  # (meta, prepared folder): files beside the data
    notes: dict[str, str] = field(default_factory=dict)


def _discover() -> dict[str, Recipe]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("common", "generic"):  # generic: the recipes of your own data
            found.append(importlib.import_module(f"{__name__}.{module.name}").RECIPE)
    return {recipe.name: recipe for recipe in sorted(found, key=lambda r: r.order)}


RECIPES: dict[str, Recipe] = _discover()
YOUTUBE = tuple(name for name, r in RECIPES.items() if r.youtube_eval_ids)  # joined by YouTube id
CAPTIONED_TARGETS = tuple(name for name, r in RECIPES.items() if r.retrieval_target)
LABELLED_TARGETS = tuple(name for name, r in RECIPES.items() if r.classification)


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def dataset_kind(name: str, user_info: dict | None) -> str | None:
    """"captions" (a retrieval target), "labels" (a classification set) or None: a known dataset's by its recipe,
    a user dataset's by the `dataset.json` its prepare wrote (`user_info`)."""
    if user_info is not None:
        return user_info.get("recipe")
    if name not in RECIPES:
        return None
    own = RECIPES[name]
    return "captions" if own.retrieval_target else "labels" if own.classification else None


def classification_for(name: str, user_info: dict | None) -> Classification | None:
    """How a prepared set is scored: a known dataset's recipe, or what prepare decided from a user set's data."""
    if user_info is not None:
        spec = user_info.get("classification")
        return None if spec is None else Classification(**{**spec, "train_splits": tuple(spec["train_splits"])})
    return RECIPES[name].classification if name in RECIPES else None


def read_dataset(name: str, meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    """Dataset `name`'s rows and problems, read by its recipe."""
    return recipe(name).read(meta, pattern, joins)


def joined_datasets(name: str, configured) -> list[str]:
    """The datasets whose metadata preparing `name` reads: a YouTube-keyed set (AudioSet, AudioCaps, VGGSound)
    joins every other configured one — AudioSet's tags by YouTube id, and the evaluation ids the leakage gate
    holds out; any other set joins none."""
    return [other for other in YOUTUBE if other != name and other in configured] if name in YOUTUBE else []


def evaluation_youtube_ids(metas: dict[str, Path]) -> dict[str, list[str]]:
    """YouTube id -> the evaluation splits holding it ("audioset/eval", "audiocaps/test", ...)."""
    held = defaultdict(list)
    for name in YOUTUBE:
        if name in metas:
            for youtube_id, split in RECIPES[name].youtube_eval_ids(metas[name]):
                if split not in held[youtube_id]:
                    held[youtube_id].append(split)
    return dict(held)
