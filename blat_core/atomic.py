"""Atomic outputs: write to a temporary sibling, then rename, so a killed stage leaves no half file."""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (file or folder).

    The temporary folder's name holds the writer's pid (`.<name>.<pid>.XXXX.tmp`); one left behind by
    a writer that no longer runs (a SIGKILLed stage) is removed by the next write of the same path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(path: Path) -> list[Path]:
    """Remove the temporary siblings of `path` whose writing process is gone; returns them.

    Matches exactly the names `atomic_path` makes for this `path` (the random part of a mkdtemp name
    has no dot), so a live writer of a sibling (`x.json` beside `x`) is never touched; a name without
    a pid comes from an older version of this code and is stale."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp")
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.fullmatch(candidate.name)
        if match is None or (match.group(1) and _running(int(match.group(1)))):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically, keys sorted, so identical payloads give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def csv_text(rows: Iterable[list], header: list[str] | None = None) -> str:
    """CSV as the datasets ship it and as we write it: comma separated, quoted only where needed, '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | Path, header: list[str], rows: Iterable[list]) -> None:
    """A CSV file with a header row, written atomically."""
    write_text(path, csv_text(rows, header))
