"""A fresh git + DVC copy of the project's tracked files, with its own params.yaml, for end-to-end runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT


def run(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def make_project(work: Path, home: Path, params: dict) -> dict:
    """Copy the tracked files (no data but data/id_lists/, no metrics or dvc.lock) into `work`, write `params`
    as its params.yaml, commit it in a new git repository; returns the environment to run dvc in (isolated
    git/DVC config)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        if (name.startswith(("data/", "metrics/")) and not name.startswith("data/id_lists/")) or name == "dvc.lock":
            continue  # data/id_lists/ is a tracked dep of every evaluate stage
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, work / name)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
        "DVC_NO_ANALYTICS": "1",
        "BLAT_NUM_WORKERS": "2",
    }
    for args in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "t@example.com"],
        ["git", "config", "user.name", "test"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "init"],
    ):
        run(args, work, env)
    return env
