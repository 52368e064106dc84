"""Datasets are recipes: each module in blat_core/data/datasets/ is found by name and complete, its demo half
in blat_core/data/demo/recipes/ too, and a new dataset is one recipe plus one demo module
(tests/helpers/toy_recipe.py) that runs from demo files to a prepared, scorable classification set without
touching any other module."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from blat_core.data import datasets
from blat_core.data.datasets import RECIPES
from blat_core.data.demo.recipes import DEMOS
from tests.conftest import ROOT, project_params


def test_every_recipe_module_is_registered_under_its_module_name():
    """The registry finds each module of the folder; a recipe's name is its module's name."""
    modules = {p.stem for p in (ROOT / "blat_core" / "data" / "datasets").glob("*.py")}
    modules -= {"__init__", "common", "generic"}  # generic: the recipes of your own data, chosen by `recipe:`
    assert set(RECIPES) == modules
    assert list(RECIPES) == [r.name for r in sorted(RECIPES.values(), key=lambda r: r.order)]
    demo_modules = {p.stem for p in (ROOT / "blat_core" / "data" / "demo" / "recipes").glob("*.py")} - {"__init__"}
    assert set(DEMOS) == demo_modules == modules  # every dataset has its demo half, under the same name


def test_every_recipe_is_complete_and_matches_the_params():
    """Its placeholders format, its demo sizes are in params.yaml, and params.yaml prepares exactly the recipes."""
    params = project_params()
    assert set(params["prepare"]["datasets"]) == set(RECIPES)
    assert set(params["demo"]["sample_rates"]) == set(RECIPES)
    sizes = {key for demo in DEMOS.values() for key in demo.sizes}
    assert sizes == set(params["demo"]["sizes"])
    for name, recipe in RECIPES.items():
        recipe.read.__call__  # noqa: B018  (a callable reader)
        assert params["prepare"]["datasets"][name]["audio_pattern"].format(**recipe.pattern_fields)
        if recipe.classification:
            assert recipe.classification.primary_metric in ("accuracy", "mAP")


def test_an_unknown_dataset_names_the_known_ones():
    with pytest.raises(ValueError, match="known: audioset, audiocaps"):
        datasets.recipe("audiosett")


def test_a_new_dataset_is_one_module(tmp_path, monkeypatch):
    """The toy recipe, registered, plans and writes demo files, prepares, and scores as a classification set."""
    from blat_core.data.demo.corpus import DemoParams, render_corpus
    from blat_core.data.demo.planning import Planner
    from blat_core.data.labelled import labelled_clips
    from blat_core.data.prepare import DatasetSource, PrepareParams, prepare_dataset
    from blat_core.data.prepared import PreparedDataset
    from blat_core.params import from_dict
    from tests.helpers import toy_recipe

    monkeypatch.setitem(RECIPES, "toy", toy_recipe.RECIPE)
    monkeypatch.setitem(DEMOS, "toy", toy_recipe.DEMO)
    demo = project_params()["demo"]
    demo["sizes"] |= {"toy_train": 6, "toy_test": 4}
    demo["sample_rates"]["toy"] = 16000
    p = from_dict(DemoParams, demo | {"scale": 1.0}, "demo")
    planner = Planner(p)
    toy_recipe.DEMO.plan(planner, {})
    root = tmp_path / "demo"
    placed = render_corpus(planner.corpus, root, workers=1)
    toy_recipe.DEMO.write(planner.corpus.rows["toy"], placed, root, p.seed)

    source = DatasetSource(meta=str(root / "toy"), audio=str(root / "toy" / "clips"), audio_pattern="{split}/{file}")
    prepare = from_dict(PrepareParams, project_params()["prepare"], "prepare")
    prepare = dataclasses.replace(prepare, datasets={"toy": source})
    out = tmp_path / "prepared" / "toy"
    out.mkdir(parents=True)
    metrics = prepare_dataset("toy", prepare, {}, out, workers=1)
    assert metrics["clips"] == 10 and metrics["skipped_total"] == 0

    rows = list(PreparedDataset(out).rows())
    assert {r["split"] for r in rows if r["trainable"]} == {"train"}  # its evaluation split never trains
    data = labelled_clips(PreparedDataset(out))
    (train, test), = data.evaluation_sets()
    assert train.sum() == 6 and test.sum() == 4 and not data.multi_label
    assert np.all(data.targets.sum(axis=1) == 1)
