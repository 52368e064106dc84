"""Every DVC stage declares the code it runs: each blat_core module its script imports (directly or
through other modules, at the top or inside functions) is a dependency, so editing it re-runs the stage."""

from __future__ import annotations

from pathlib import Path

import yaml

from blat_core.code_closure import import_closure
from tests.conftest import ROOT


def code_of(script: Path) -> set[Path]:
    """The script and every blat_core module it reaches through imports."""
    return import_closure([script])


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def _script(cmd: str) -> Path:
    words = cmd.split()
    if words[:3] == ["python", "-m", "blat_core.app.launch"]:
        return ROOT / words[3]
    assert words[0] == "python", cmd
    return ROOT / words[1]


def test_every_stage_declares_the_code_it_imports():
    missing = {}
    for name, stage in _stages().items():
        script = _script(stage["cmd"])
        if words_launch := stage["cmd"].startswith("python -m blat_core.app.launch"):
            code = code_of(script) | code_of(ROOT / "blat_core" / "app" / "launch.py")
        else:
            code = code_of(script)
        assert words_launch or script.relative_to(ROOT) in {Path(d) for d in stage["deps"]}, name
        deps = [Path(d) for d in stage.get("deps", []) if not d.startswith("$")]
        uncovered = sorted(
            str(p) for p in code if not any(p == d or d in p.parents for d in deps) and p.suffix == ".py"
        )
        if uncovered:
            missing[name] = uncovered
    assert not missing, f"stages missing code deps in dvc.yaml: {missing}"


def test_the_report_reads_exactly_the_metrics_it_depends_on():
    from stages.report import CURVE, DETAILS, PRETRAIN_CURVES, SOURCES

    deps = _stages()["report"]["deps"]
    read = {f"metrics/{stem}.json" for stem in SOURCES} | {f"metrics/{DETAILS}"}
    read |= {f"metrics/pretrain_{stage}_live/{CURVE}" for stage, _ in PRETRAIN_CURVES}
    assert {d for d in deps if d.startswith("metrics/")} == read
