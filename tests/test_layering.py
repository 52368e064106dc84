"""The library's layers, lowest first: core ← metrics ← data ← models ← bootstrap ← train ← eval ← app ←
stages. A module imports only from its own layer or a lower one, at any depth (inside functions too: the
stages' DVC deps are their import closures, so a wrong-way import anywhere costs re-runs). The demo corpus
is a side room: only `make_demo` (and the tests) may import it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

CORE = ("atomic", "code_closure", "compute", "cpu_runtime", "distributed", "params", "remote_code", "runtime",
        "stage_code", "yaml_input")  # fmt: skip
LAYERS = {"core": 0, "metrics": 1, "data": 2, "models": 3, "bootstrap": 4, "train": 5, "eval": 6, "app": 7,
          "demo": 7, "stages": 8}  # fmt: skip
DEMO = "blat_core.data.demo"
# Deliberate exceptions, each with its reason: (importing module, imported module).
ALLOWED: set[tuple[str, str]] = set()


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "stages":
        return "stages"
    if module == "blat_core" or parts[1] in CORE:
        return "core"
    if module == DEMO or module.startswith(DEMO + "."):
        return "demo"
    if parts[1] == "eval" and len(parts) > 2 and parts[2] == "metrics":
        return "metrics"
    if parts[1] in LAYERS:
        return parts[1]
    raise AssertionError(f"{module}: in no layer; add its folder to tests/test_layering.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = ROOT / Path(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(source: str) -> set[str]:
    """The blat_core modules a source imports, at any depth (`from a import b`: a.b when b is a module, else a)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                names.add(name if _is_module(name) else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "blat_core" or n.startswith("blat_core.")}


def wrong_way(sources: dict[str, str]) -> list[str]:
    """Every import from a higher layer, or of demo code outside the demo and make_demo: 'a -> b (why)'."""
    found = []
    for importer, source in sorted(sources.items()):
        for name in sorted(imports(source)):
            imported = name
            if (importer, imported) in ALLOWED:
                continue
            mine, theirs = layer(importer), layer(imported)
            if theirs == "demo" and mine != "demo" and importer != "stages.make_demo":
                found.append(f"{importer} -> {imported} (demo code outside the demo)")
            elif LAYERS[theirs] > LAYERS[mine]:
                found.append(f"{importer} -> {imported} ({mine} imports {theirs})")
    return sorted(set(found))


def project_sources() -> dict[str, str]:
    files = [*(ROOT / "blat_core").rglob("*.py"), *(ROOT / "stages").glob("*.py")]
    return {module_name(p): p.read_text() for p in files}


def test_imports_follow_the_layers():
    assert wrong_way(project_sources()) == []


def test_a_wrong_way_import_is_found_even_inside_a_function():
    sources = project_sources()
    sources["blat_core.data.prepared"] += "\n\ndef later():\n    from blat_core.train import loop\n"
    sources["blat_core.models.embed"] += "\nfrom blat_core.eval.classification import zero_shot\n"
    sources["blat_core.train.tagger"] += "\nimport blat_core.data.demo.sounds\n"
    assert wrong_way(sources) == [
        "blat_core.data.prepared -> blat_core.train.loop (data imports train)",
        "blat_core.models.embed -> blat_core.eval.classification (models imports eval)",
        "blat_core.train.tagger -> blat_core.data.demo.sounds (demo code outside the demo)",
    ]


def test_every_module_is_in_a_layer_and_the_allow_list_is_current():
    sources = project_sources()
    for module in sources:
        layer(module)
    for importer, imported in ALLOWED:
        assert importer in sources and imported in imports(sources[importer]), importer
