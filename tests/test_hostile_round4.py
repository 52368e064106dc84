"""Hostile input, round 4: a few bytes never take the machine down. A recursive YAML alias ends in one line at
once, an odd sample rate resamples in bounded memory, a huge CSV field is a counted problem, an absurd model
config is one line naming its key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

CYCLES = {  # legal YAML that PyYAML's own safe_load builds at once as recursive objects
    "sequence": "a: &a [*a]\n",
    "mapping": "a: &a {b: *a}\n",
    "two steps": "a: &a [1, {x: &b [2, *a]}]\n",
    "mapping key path": "x: &k {y: [1, {z: *k}]}\n",
    "deep": "top: &t [[[[[[[[*t]]]]]]]]\n",
}


LOADERS = {  # (imports, the load of the file at sys.argv[1]): only the load is timed
    "guard": ("from blat_core.yaml_input import safe_load", "safe_load(open(sys.argv[1]).read(), sys.argv[1])"),
    "params": ("from blat_core.params import load_params_file", "load_params_file(sys.argv[1])"),
    "macs": ("from pathlib import Path; from blat_core.data.datasets import macs",
             "macs.read(Path(sys.argv[1]).parent, '{filename}', {})"),
}
TIMED = ("import sys, time; {imports}; started = time.perf_counter()\ntry:\n    {load}\nfinally:\n"
         "    print(f'seconds {{time.perf_counter() - started:.4f}}', file=sys.stderr)")


def _load_in_child(path, loader: str) -> tuple[subprocess.CompletedProcess, float]:
    """(the child's result, seconds the load took) of one loader run in a child with a deadline: a loader that
    loops forever fails the test instead of hanging the suite."""
    try:
        imports, load = LOADERS[loader]
        result = subprocess.run([sys.executable, "-c", TIMED.format(imports=imports, load=load), str(path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {loader} loader was still running after 20 s on {path.read_text()!r}")
    seconds = [float(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("seconds ")]
    return result, seconds[-1]


@pytest.mark.parametrize("shape", list(CYCLES))
def test_a_self_referencing_yaml_alias_is_refused_at_once(shape, tmp_path):
    """A node that holds an alias of itself (a cycle of any length, through sequences or mappings) is one clear
    error in well under a second, from the bare guard and from the params and MACS.yaml loaders."""
    for loader, name in (("guard", "any.yaml"), ("params", "params.yaml"), ("macs", "MACS.yaml")):
        (tmp_path / name).write_text(CYCLES[shape])
        result, seconds = _load_in_child(tmp_path / name, loader)
        said = [line for line in result.stderr.splitlines() if not line.startswith("seconds ")]
        assert result.returncode != 0 and "of itself" in said[-1], result.stderr[-500:]
        assert seconds < 0.2, (loader, seconds)


def test_shared_aliases_without_a_cycle_still_load():
    """A value used twice (a diamond, not a cycle) is ordinary YAML and reads as before."""
    from blat_core import yaml_input

    text = "a: &a [1]\nb: [*a, *a]\nc: &c {d: *a}\ne: *c\n"
    assert yaml_input.safe_load(text, "ok.yaml") == {"a": [1], "b": [[1], [1]], "c": {"d": [1]}, "e": {"d": [1]}}
