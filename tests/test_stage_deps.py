"""Every DVC stage declares the code it runs: each blat_core module its script imports (directly or
through other modules, at the top or inside functions) is a dependency, so editing it re-runs the stage."""

from __future__ import annotations

from pathlib import Path

import yaml

from blat_core.stage_code import code_deps
from tests.conftest import ROOT


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def _declared_code(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if d.startswith(("blat_core/", "stages/"))]


def test_every_stage_declares_exactly_the_code_it_imports():
    """Each stage lists its script and the blat_core modules it imports, and nothing else: a module it does not
    import (a demo sound for a stage that reads real data) would re-run it for nothing."""
    wrong = {}
    for name, stage in _stages().items():
        declared, wanted = _declared_code(stage), code_deps(stage["cmd"])
        if declared != wanted:
            wrong[name] = {"missing": sorted(set(wanted) - set(declared)), "extra": sorted(set(declared) - set(wanted))}
    assert not wrong, f"code deps in dvc.yaml differ from the imports (python scripts/code_deps.py --write): {wrong}"


def test_only_make_demo_depends_on_demo_code_and_the_tagger_on_no_evaluation():
    """Editing a procedural bark re-runs make_demo, not the paper-scale tagger; editing zero-shot scoring
    re-trains nothing (the tagger reads only the metric leaves of eval/)."""
    stages = _stages()
    for name, stage in stages.items():
        demo = [d for d in _declared_code(stage) if d.startswith("blat_core/data/demo")]
        assert name == "make_demo" or not demo, (name, demo)
    evaluation = [d for d in _declared_code(stages["tagger"]) if d.startswith("blat_core/eval/")]
    assert evaluation and all(d.startswith("blat_core/eval/metrics/") for d in evaluation), evaluation


def test_a_new_import_is_a_missing_dep(tmp_path):
    """The closure follows imports inside functions too: a stage that starts importing a module needs it."""
    from blat_core.code_closure import import_closure

    script = tmp_path / "stage.py"
    script.write_text("def main():\n    from blat_core.eval.metrics import retrieval\n")
    assert Path("blat_core/eval/metrics/retrieval.py") in import_closure([script])


def test_the_report_reads_exactly_the_metrics_it_depends_on():
    from stages.report import CURVE, DETAILS, PRETRAIN_CURVES, SOURCES

    deps = _stages()["report"]["deps"]
    read = {f"metrics/{stem}.json" for stem in SOURCES} | {f"metrics/{DETAILS}"}
    read |= {f"metrics/pretrain_{stage}_live/{CURVE}" for stage, _ in PRETRAIN_CURVES}
    assert {d for d in deps if d.startswith("metrics/")} == read
