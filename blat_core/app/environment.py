"""The installed environment against the committed lock, and the torch ↔ torchaudio binary check.

`python -m blat_core.app.environment [--lock requirements.lock] [--extras]` is what `scripts/setup_env.sh`
runs after installing: it exits 1 with a list of what differs from the lock, or when torchaudio's
compiled extension does not load. It imports nothing heavy until asked (setup runs it before the
project itself is installed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Installed by venv itself or by the setup's editable install, never part of the lock.
NOT_LOCKED = {"pip", "blat-pipeline"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    version: str
    marker: str | None  # the environment marker the lock attached, if any
    hashes: int  # how many --hash lines follow the pin

    def applies(self) -> bool:
        """Whether this pin is meant for the running interpreter and platform."""
        return self.marker is None or Marker(self.marker).evaluate()


def read_lock(path: Path) -> list[Pin]:
    """Every `name==version [; marker]` pin of a hash-locked requirements file (uv / pip-compile format)."""
    pins: list[Pin] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("--hash="):
            if not pins:
                raise ValueError(f"{path}:{number}: a --hash line before any pin")
            last = pins[-1]
            pins[-1] = Pin(last.name, last.version, last.marker, last.hashes + 1)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = _PIN.match(stripped)
        if match is None:
            raise ValueError(f"{path}:{number}: not an exact pin (name==version): {stripped!r}")
        name, version, marker = match.groups()
        pins.append(Pin(canonicalize_name(name), version, marker.strip() if marker else None, 0))
    return pins


def pins_for_here(pins: list[Pin]) -> dict[str, str]:
    """{name: version} of the pins whose markers hold on this interpreter and platform."""
    return {pin.name: pin.version for pin in pins if pin.applies()}


def installed_versions() -> dict[str, str]:
    """{canonical name: version} of every distribution in the running environment."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = dist.version
    return found


def unlocked(wanted: dict[str, str], installed: dict[str, str]) -> list[str]:
    """The installed packages the lock does not list (pip and the project itself aside), sorted."""
    return sorted(set(installed) - set(wanted) - NOT_LOCKED)


def differences(wanted: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per package that is missing, at another version, or not in the lock."""
    lines = []
    for name, version in sorted(wanted.items()):
        have = installed.get(name)
        if have is None:
            lines.append(f"missing: {name}=={version}")
        elif have != version:
            lines.append(f"version: {name} is {have}, the lock says {version}")
    lines += [f"not in the lock: {name}=={installed[name]}" for name in unlocked(wanted, installed)]
    return lines


def project_requirements(pyproject: Path, extras: tuple[str, ...] = ("dev",)) -> list[Requirement]:
    """The project's dependencies plus the named extras, as written in pyproject.toml."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project.get("dependencies", []))
    for extra in extras:
        lines += project.get("optional-dependencies", {}).get(extra, [])
    return [Requirement(line) for line in lines]


def lock_disagreements(requirements: list[Requirement], pins: list[Pin]) -> list[str]:
    """One line per pyproject requirement the lock does not satisfy (absent, or a version outside its range)."""
    versions: dict[str, list[str]] = {}
    for pin in pins:
        versions.setdefault(pin.name, []).append(pin.version)
    lines = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in versions:
            lines.append(f"{requirement}: not in the lock")
            continue
        outside = [v for v in versions[name] if not requirement.specifier.contains(v, prereleases=True)]
        if outside:
            lines.append(f"{requirement}: the lock pins {', '.join(outside)}")
    unhashed = [pin.name for pin in pins if pin.hashes == 0]
    if unhashed:
        lines.append(f"pins without --hash lines: {', '.join(unhashed)}")
    return lines


def torchaudio_problem() -> str | None:
    """None when torchaudio's compiled extension loads and resamples; else what failed and how to fix it."""
    torch_version = installed_version("torch")
    torchaudio_version = installed_version("torchaudio")
    try:
        import torch
        import torchaudio  # loads libtorchaudio: where a torch/torchaudio mismatch surfaces (undefined symbol)
        import torchaudio.functional

        if not torchaudio._extension._IS_TORCHAUDIO_EXT_AVAILABLE:
            raise ImportError("torchaudio's compiled extension (_torchaudio) is not there")
        wave = torch.sin(torch.linspace(0, 100, 1600))
        out = torchaudio.functional.resample(wave, 16000, 32000)
        if out.shape[-1] != 3200 or not torch.isfinite(out).all():
            return f"torchaudio {torchaudio_version} resampled 1600 samples at 16 → 32 kHz to {tuple(out.shape)}"
    except Exception as error:  # an ImportError, OSError (undefined symbol), RuntimeError: all mean the same fix
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return (f"torchaudio {torchaudio_version} does not work with torch {torch_version}: {first}. "
                "They are built as a pair: install the locked versions with scripts/setup_env.sh "
                "(or `pip install --require-hashes --no-deps -r requirements.lock`).")  # fmt: skip
    return None


def installed_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--extras", action="store_true",
                        help="print the installed packages the lock does not list, one a line; exit")  # fmt: skip
    args = parser.parse_args(argv)
    wanted, installed = pins_for_here(read_lock(args.lock)), installed_versions()
    if args.extras:
        print("\n".join(unlocked(wanted, installed)))
        return 0
    lines = differences(wanted, installed)
    problem = torchaudio_problem()
    for line in lines:
        print(f"environment differs from {args.lock}: {line}", file=sys.stderr)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    if lines or problem:
        return 1
    print(f"environment: {len(wanted)} packages exactly as {args.lock}; torchaudio loads and resamples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
