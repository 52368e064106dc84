"""Params load strictly: unknown keys, missing keys, wrong types and bad ranges name the full key."""

from __future__ import annotations

import copy

import pytest

from blat_core.demo.corpus import DemoParams
from blat_core.params import ParamsError, from_dict, load_section
from blat_core.prepare import PrepareParams
from tests.conftest import ROOT, project_params


def test_project_params_load():
    """Every section of the committed params.yaml loads into its dataclass."""
    demo = load_section(ROOT / "params.yaml", "demo", DemoParams)
    prepare = load_section(ROOT / "params.yaml", "prepare", PrepareParams)
    assert demo.sizes.audiocaps_test > 0
    assert set(prepare.datasets) == {"audioset", "audiocaps", "clotho", "macs", "esc50", "us8k", "fsd50k", "vggsound"}


def test_unknown_key_names_full_path():
    """A misspelt nested key fails with its dotted name."""
    section = copy.deepcopy(project_params()["demo"])
    section["sizes"]["audiocaps_tset"] = 3
    with pytest.raises(ParamsError, match=r"demo\.sizes\.audiocaps_tset"):
        from_dict(DemoParams, section, "demo")


def test_unknown_key_in_dict_of_dataclasses():
    """Keys inside a dataset entry are checked too."""
    section = copy.deepcopy(project_params()["prepare"])
    section["datasets"]["esc50"]["root"] = "x"
    with pytest.raises(ParamsError, match=r"prepare\.datasets\.esc50\.root"):
        from_dict(PrepareParams, section, "prepare")


def test_missing_key_named():
    section = copy.deepcopy(project_params()["prepare"])
    del section["silence_dbfs"]
    with pytest.raises(ParamsError, match=r"prepare\.silence_dbfs is missing"):
        from_dict(PrepareParams, section, "prepare")


def test_yaml11_float_string_rejected_with_hint():
    """`1e-4` read by a YAML 1.1 parser is a string: rejected, with the fix in the message."""
    section = copy.deepcopy(project_params()["prepare"])
    section["max_bad_fraction"] = "1e-4"
    with pytest.raises(ParamsError, match=r"prepare\.max_bad_fraction.*1\.0e-4"):
        from_dict(PrepareParams, section, "prepare")


def test_range_checked():
    section = copy.deepcopy(project_params()["prepare"])
    section["max_bad_fraction"] = 1.5
    with pytest.raises(ParamsError, match=r"prepare\.max_bad_fraction: must be <= 1\.0"):
        from_dict(PrepareParams, section, "prepare")


def test_bool_is_not_an_int():
    section = copy.deepcopy(project_params()["demo"])
    section["max_events"] = True
    with pytest.raises(ParamsError, match=r"demo\.max_events: expected an integer"):
        from_dict(DemoParams, section, "demo")


def test_bad_audio_pattern_lists_placeholders():
    section = copy.deepcopy(project_params()["prepare"])
    section["datasets"]["esc50"]["audio_pattern"] = "{file}"
    params = from_dict(PrepareParams, section, "prepare")
    with pytest.raises(ParamsError, match=r"prepare\.datasets\.esc50\.audio_pattern.*filename, fold"):
        params.source("esc50")
