"""The code deps `dvc.yaml` declares for each stage: its script's import closure (`code_closure`), a folder
named instead of its files when the stage imports every module in it.

`scripts/code_deps.py --write` rewrites dvc.yaml's code deps from this; tests/test_stage_deps.py checks that
each stage declares exactly these (no module it does not import, none it imports left out).
"""

from __future__ import annotations

from pathlib import Path

from blat_core.code_closure import ROOT, _runs_nothing, import_closure

LAUNCHER = "blat_core/app/launch.py"


def stage_script(cmd: str) -> tuple[Path, list[Path]]:
    """The stage's script and the entry files it runs (the launcher too, for `python -m blat_core.app.launch`)."""
    words = cmd.split()
    if words[:3] == ["python", "-m", "blat_core.app.launch"]:
        return Path(words[3]), [Path(words[3]), Path(LAUNCHER)]
    if words[0] != "python":
        raise ValueError(f"a stage command starts with `python <script>`: {cmd!r}")
    return Path(words[1]), [Path(words[1])]


def _modules(folder: Path, root: Path) -> set[Path]:
    return {p.relative_to(root) for p in (root / folder).rglob("*.py") if not _runs_nothing(p)}


def code_deps(cmd: str, root: Path = ROOT) -> list[str]:
    """The stage's entry files and the blat_core code they import, folders collapsed, sorted as dvc.yaml lists
    them: the script first, then the library."""
    script, entries = stage_script(cmd)
    closure = import_closure([root / e for e in entries], root)
    library = sorted(p for p in closure if p.parts[0] == "blat_core")
    folders = sorted({q for p in library for q in p.parents if q != Path(".") and q != Path("blat_core")},
                     key=lambda f: len(f.parts))  # fmt: skip
    chosen: list[Path] = []
    covered: set[Path] = set()
    for folder in folders:
        modules = _modules(folder, root)
        if len(modules) > 1 and modules <= set(library) and not any(c in folder.parents for c in chosen):
            chosen.append(folder)
            covered |= modules
    listed = chosen + [p for p in library if p not in covered]
    return [str(script), *sorted(str(p) for p in listed if str(p) != str(script))]
