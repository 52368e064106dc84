"""Shared fixtures: a tiny demo corpus and its prepared datasets, built once per test session.

The demo and prepare modules (soundfile, torchaudio) are imported inside the fixtures that need them, so
that a test module needing neither (tests/test_gpu.py) also runs where only torch is installed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from blat_core.params import from_dict

if TYPE_CHECKING:
    from blat_core.data.demo.corpus import DemoParams
    from blat_core.data.prepare import PrepareParams

ROOT = Path(__file__).resolve().parents[1]

# The `tiny` size: every dataset present, every split non-empty, seconds to build.
TINY_DEMO = {"scale": 0.05, "clip_seconds": 2.0, "clotho_seconds": 3.0}
TINY_SIZES = {"esc50_per_class_and_fold": 1, "us8k_per_class_and_fold": 1}


def project_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params() -> dict:
    """params.yaml with the demo shrunk to the tiny size and the models to a few steps of a narrow CNN14."""
    params = copy.deepcopy(project_params())
    params["demo"].update(TINY_DEMO)
    params["demo"]["sizes"].update(TINY_SIZES)
    params["audio_encoder"]["channels"] = [4, 8, 16, 32, 64, 64]
    params["tagger"].update({"steps": 6, "batch_size": 8, "warmup_steps": 2, "log_every": 2, "checkpoint_every": 3})
    params["captioner"].update({"epochs": 2, "batch_size": 8, "warmup_steps": 2, "average_last": 2})
    params["pretrain"].update({"batch_size": 8, "embed_dim": 16, "log_every": 2, "checkpoint_every": 2})
    for stage in ("stage1", "stage2"):
        params["pretrain"][stage].update({"steps": 4, "warmup_steps": 1, "val_every": 2})
    params["evaluate"]["tasks"]["linear_probe"].update({"epochs": 20, "seeds": [0, 1]})
    params["evaluate"]["tasks"]["finetune"].update({"steps": 2, "batch_size": 4, "seeds": [0]})
    tuned = {"steps": 2, "batch_size": 4, "seeds": [0], "val_every": 2}
    params["evaluate"]["tasks"]["retrieval_finetune"].update(tuned)
    params["evaluate"]["tasks"]["captioning"]["captioner"].update({"epochs": 2, "batch_size": 8, "average_last": 1})
    return params


def relocated(params: dict, corpus: Path) -> dict:
    """A copy of a params dict whose dataset roots point into `corpus` instead of data/demo."""
    params = copy.deepcopy(params)
    for source in params["prepare"]["datasets"].values():
        source["meta"] = source["meta"].replace("data/demo", str(corpus))
        source["audio"] = source["audio"].replace("data/demo", str(corpus))
    return params


def prepare_params_for(corpus: Path, **overrides) -> PrepareParams:
    """The project's prepare params with every dataset root moved into `corpus`."""
    from blat_core.data.prepare import PrepareParams

    section = relocated(project_params(), corpus)["prepare"]
    section.update(overrides)
    return from_dict(PrepareParams, section, "prepare")


def joins_for(name: str, params: PrepareParams) -> dict[str, Path]:
    from blat_core.data.datasets import YOUTUBE as YOUTUBE_DATASETS

    if name not in YOUTUBE_DATASETS:
        return {}
    return {other: params.datasets[other].meta_dir for other in YOUTUBE_DATASETS}


@pytest.fixture(scope="session")
def tiny_demo_params() -> DemoParams:
    from blat_core.data.demo.corpus import DemoParams

    return from_dict(DemoParams, tiny_params()["demo"], "demo")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_demo_params) -> Path:
    from blat_core.data.demo.corpus import build_corpus

    root = tmp_path_factory.mktemp("corpus") / "demo"
    build_corpus(tiny_demo_params, root, workers=2)
    return root


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, tiny_corpus) -> dict[str, tuple[Path, dict]]:
    """Every dataset of the tiny corpus prepared: name -> (folder, metrics)."""
    from blat_core.data.prepare import prepare_dataset

    params = prepare_params_for(tiny_corpus)
    out = {}
    for name in params.datasets:
        folder = tmp_path_factory.mktemp("prepared") / name
        folder.mkdir()
        out[name] = (folder, prepare_dataset(name, params, joins_for(name, params), folder, workers=2))
    return out
