"""The install is the lock: pyproject's ranges and requirements.lock agree, every pin is hashed, the running
environment is exactly the lock, and a torchaudio that cannot load beside this torch is named loudly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from blat_core.app import environment
from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"


def test_pyproject_and_the_lock_agree():
    """Every dependency of pyproject.toml (and its dev extra) is pinned in the lock inside its range, with hashes."""
    pins = environment.read_lock(LOCK)
    assert environment.lock_disagreements(environment.project_requirements(ROOT / "pyproject.toml"), pins) == []
    assert {"torch", "torchaudio", "dvc", "numpy"} <= {pin.name for pin in pins}


def test_a_disagreement_is_reported():
    """A range the lock does not satisfy, a missing package and an unhashed pin are each named."""
    pins = environment.read_lock(LOCK)
    torchaudio = next(p for p in pins if p.name == "torchaudio")
    requirements = [Requirement("torchaudio==2.11.1"), Requirement("not-a-package>=1"), Requirement("torch")]
    lines = environment.lock_disagreements(requirements, [*pins, environment.Pin("extra", "1.0", None, 0)])
    assert f"torchaudio==2.11.1: the lock pins {torchaudio.version}" in lines
    assert "not-a-package>=1: not in the lock" in lines
    assert "pins without --hash lines: extra" in lines


def test_read_lock_parses_markers_and_rejects_loose_lines(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# header\nfoo==1.0 ; sys_platform == 'nowhere' \\\n    --hash=sha256:ab\nBar_Baz==2 \\\n"
                    "    --hash=sha256:cd \\\n    --hash=sha256:ef\n    # via x\n")  # fmt: skip
    assert environment.read_lock(lock) == [
        environment.Pin("foo", "1.0", "sys_platform == 'nowhere'", 1),
        environment.Pin("bar-baz", "2", None, 2),
    ]
    assert environment.pins_for_here(environment.read_lock(lock)) == {"bar-baz": "2"}
    lock.write_text("foo>=1.0\n")
    with pytest.raises(ValueError, match=r"lock.txt:1: not an exact pin"):
        environment.read_lock(lock)


def test_differences_name_missing_other_and_extra_packages():
    wanted = {"a": "1", "b": "2"}
    assert environment.differences(wanted, {"a": "1", "b": "3", "c": "4", "pip": "25"}) == [
        "version: b is 3, the lock says 2",
        "not in the lock: c==4",
    ]
    assert environment.differences(wanted, {"a": "1"}) == ["missing: b==2"]
    assert environment.unlocked(wanted, {"a": "1", "c": "4", "pip": "25", "blat-pipeline": "0.1.0"}) == ["c"]


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="runs in the project's .venv (scripts/setup_env.sh) only")  # fmt: skip
def test_the_installed_environment_is_exactly_the_lock():
    """What scripts/setup_env.sh installed equals the lock's pins for this platform (pip freeze == lock)."""
    wanted = environment.pins_for_here(environment.read_lock(LOCK))
    assert environment.differences(wanted, environment.installed_versions()) == []


def test_torchaudio_loads_and_resamples_here():
    assert environment.torchaudio_problem() is None


def test_doctor_names_both_versions_when_torchaudio_cannot_load(tmp_path):
    """A torchaudio whose compiled extension fails to load (as 2.11.1 beside torch 2.11.0 did) makes
    `blat doctor` print a FAIL line naming both versions and the fix, and exit 1."""
    fake = tmp_path / "shadow" / "torchaudio"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise OSError('libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "blat_core.app.cli", "doctor", "--project", str(tmp_path)],
                            capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    line = next(line for line in result.stdout.splitlines() if "torchaudio" in line)
    torch_version = environment.installed_version("torch")
    torchaudio_version = environment.installed_version("torchaudio")
    assert line.startswith("FAIL") and "undefined symbol" in line, result.stdout
    assert f"torchaudio {torchaudio_version} does not work with torch {torch_version}" in line
    assert "requirements.lock" in line and result.returncode == 1


def test_the_setup_check_fails_on_a_broken_torchaudio(tmp_path):
    """`python -m blat_core.app.environment` (what the setup runs once per install) exits 1 naming the versions."""
    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('undefined symbol: x')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "blat_core.app.environment", "--lock", str(LOCK)],
                            capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "does not work with torch" in result.stderr, result.stderr


def test_the_setup_says_how_much_disk_a_first_install_needs(tmp_path):
    """On a disk with too little room for the first install (it peaks at ~8 GB), scripts/setup_env.sh stops
    before pip starts, naming the space it needs and has, instead of pip's 'No space left on device'
    half-way (CI once failed so). `df` is faked; the venv's pip is a stub that records any call."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup_env.sh", project / "scripts")
    for name in ("requirements.lock", "pyproject.toml"):
        shutil.copy(ROOT / name, project)
    stub = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/../calls"\n'
    for tool in ("pip", "python"):
        (project / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
        (project / ".venv" / "bin" / tool).write_text(stub)
        (project / ".venv" / "bin" / tool).chmod(0o755)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "df").write_text(
        "#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
        "echo '/dev/x 10485760 9437184 1048576 90% /'\n"  # 1 GB available
    )
    (fake / "df").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}
    result = subprocess.run(["bash", "scripts/setup_env.sh"], cwd=project, capture_output=True, text=True, env=env)
    assert result.returncode == 1, result.stderr
    assert "needs about 9 GB free" in result.stderr and "it has 1 GB" in result.stderr, result.stderr
    assert not (project / ".venv" / "calls").exists(), "pip ran although the disk was too small"
