"""The code an entry point runs: the file and every `blat_core` module it reaches through import statements
(at the top or inside functions; a package imported by discovery brings all its modules).

Two users: `dvc.yaml`'s code deps of each stage (tests/test_stage_deps.py checks them) and the resume
fingerprints of training stages (`train.checkpointing`), which restart only when code the stage actually
runs has changed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Packages that import their modules by discovery (pkgutil), not by import statements.
DISCOVERED = {"blat_core/data/datasets/__init__.py", "blat_core/data/demo/recipes/__init__.py"}


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """The `blat_core` module and attribute names a file imports."""
    names = set()
    if path.is_relative_to(root) and path.relative_to(root).as_posix() in DISCOVERED:
        package = ".".join(path.parent.relative_to(root).parts)
        names.update(f"{package}.{module.stem}" for module in path.parent.glob("*.py") if module.stem != "__init__")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "blat_core" or n.startswith("blat_core.")}


def module_file(name: str, root: Path = ROOT) -> Path | None:
    base = root / Path(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None  # an attribute (from blat_core.x import function), not a module


def import_closure(entries: list[Path], root: Path = ROOT) -> set[Path]:
    """The entry files and every blat_core module they reach, relative to `root` (package __init__ files that
    hold only a docstring left out: nothing in them can change what runs). Modules are looked up under `root`
    (the library that is imported); an entry outside it (a stage script of another checkout) stays absolute."""
    seen, todo = set(), [Path(e).resolve() for e in entries]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path, root):
            parts = name.split(".")
            for end in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                module = module_file(".".join(parts[:end]), root)
                if module is not None:
                    todo.append(module.resolve())
    root = root.resolve()
    return {p.relative_to(root) if p.is_relative_to(root) else p for p in seen if not _runs_nothing(p)}


def _runs_nothing(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body
    )
