"""Params load strictly: unknown keys, missing keys, wrong types and bad ranges name the full key."""

from __future__ import annotations

import copy

import pytest

from blat_core.data.demo.corpus import DemoParams
from blat_core.data.prepare import PrepareParams
from blat_core.params import ParamsError, from_dict, load_section
from tests.conftest import ROOT, project_params


def test_project_params_load():
    """Every section of the committed params.yaml loads into its dataclass."""
    demo = load_section(ROOT / "params.yaml", "demo", DemoParams)
    prepare = load_section(ROOT / "params.yaml", "prepare", PrepareParams)
    assert demo.sizes["audiocaps_test"] > 0
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
    section["datasets"]["esc50"]["roots"] = "x"
    with pytest.raises(ParamsError, match=r"prepare\.datasets\.esc50\.roots"):
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


def _key_tree(data, depth: int = 0):
    """Section and field names down to each evaluate task's fields (lists and data maps are values)."""
    if not isinstance(data, dict) or depth == 4:
        return None
    return {k: _key_tree(v, depth + 1) for k, v in data.items() if k not in ("datasets", "targets", "sizes")}


@pytest.mark.parametrize("profile", ["params.yaml", "params.paper.yaml"])
def test_every_profile_loads_strictly_in_every_section(profile, capsys):
    from blat_core.app.doctor import Report, load_sections

    report = Report()
    loaded = load_sections(ROOT / profile, report)
    assert report.failures == [], capsys.readouterr().out
    assert loaded["audio_encoder"].config(loaded["prepare"].sample_rate)["sample_rate"] == loaded["prepare"].sample_rate


def test_paper_profile_has_the_demo_keys_and_the_paper_settings():
    import yaml

    demo = yaml.safe_load((ROOT / "params.yaml").read_text())
    paper = yaml.safe_load((ROOT / "params.paper.yaml").read_text())
    assert _key_tree(paper) == _key_tree(demo)
    assert paper["audio_encoder"] == {"name": "cnn14", "channels": [64, 128, 256, 512, 1024, 2048]}
    assert paper["prepare"]["sample_rate"] == 32000  # the one declaration of the rate
    assert paper["pretrain"]["batch_size"] == 128 and paper["pretrain"]["embed_dim"] == 1024
    assert (paper["pretrain"]["stage1"]["steps"], paper["pretrain"]["stage2"]["steps"]) == (200000, 15000)
    assert paper["pretrain"]["logit_scale_max"] is None  # unclamped, as the reference
    captioner = paper["captioner"]
    assert (captioner["epochs"], captioner["batch_size"], captioner["warmup_steps"], captioner["average_last"]) == (
        25, 64, 3000, 5)  # fmt: skip
    assert paper["evaluate"]["tasks"]["captioning"]["captioner"]["epochs"] == 25
    assert paper["evaluate"]["tasks"]["finetune"]["max_sets"] == 0  # every fold
    assert set(paper["evaluate"]["tasks"]["retrieval_finetune"]["targets"]) == {"audiocaps", "clotho"}
