"""Every DVC stage declares the code it runs: each blat_core module its script imports (directly or
through other modules, at the top or inside functions) is a dependency, so editing it re-runs the stage."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from tests.conftest import ROOT

# Packages that import their modules by discovery (pkgutil), not by import statements.
DISCOVERED = {"blat_core/data/datasets/__init__.py"}


def _imports(path: Path) -> set[str]:
    names = set()
    if str(path.relative_to(ROOT)) in DISCOVERED:
        package = ".".join(path.parent.relative_to(ROOT).parts)
        names.update(f"{package}.{module.stem}" for module in path.parent.glob("*.py") if module.stem != "__init__")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "blat_core" or n.startswith("blat_core.")}


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None  # an attribute (from blat_core.x import function), not a module


def code_of(script: Path) -> set[Path]:
    """The script and every blat_core module it reaches through imports."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                module = _module_file(".".join(parts[:end]))
                if module is not None:
                    todo.append(module)
    return {p.relative_to(ROOT) for p in seen if not _runs_nothing(p)}


def _runs_nothing(path: Path) -> bool:
    """A package __init__ that holds at most a docstring: nothing in it can change what a stage does."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body
    )


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
