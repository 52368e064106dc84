"""The CPU runtime: every run is stamped with what computed (native kernels), the removed portable mode and an
unknown mode are refused at import with one line, and scripts/cpu_digest.py's tools run (whole digest, per layer,
per kernel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LIBRARY_VARS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "BLAT_CPU_RUNTIME")


def _digest(*args: str, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in LIBRARY_VARS}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "cpu_digest.py"), *args], env={**base, **env},
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip


def test_a_run_is_stamped_with_its_kernels_and_repeats_bit_for_bit():
    first, second = (json.loads(_digest().stdout) for _ in range(2))
    assert first["digest"] == second["digest"]
    stamp = first["stamp"]
    assert stamp["runtime"] == "native" and stamp["cpu_capability"] and stamp["threads"] >= 1


@pytest.mark.parametrize(("value", "said"), [("portable", "BLAT_CPU_RUNTIME=portable was removed"),
                                             ("fast", "BLAT_CPU_RUNTIME must be native (or unset), got 'fast'")])
def test_a_removed_or_unknown_mode_is_refused_at_import(value, said):
    """A script or CI job still setting BLAT_CPU_RUNTIME=portable learns at once that it no longer pins anything."""
    done = subprocess.run([sys.executable, "-c", "import blat_core"], env={**os.environ, "BLAT_CPU_RUNTIME": value},
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [done.stderr.strip()] and said in done.stderr


def test_the_digest_tools_name_layers_and_kernels():
    """--layers gives a digest per module output and parameter gradient; --ops one per kernel."""
    layers = json.loads(_digest("--layers", "--no-onednn").stdout)["layers"]
    assert "output frontend.mel (MelScale)" in layers and "gradient fc1.weight" in layers
    kernels = json.loads(_digest("--ops").stdout)["ops"]
    assert set(kernels) == {"matmul", "conv2d", "batch_norm", "sum", "stft", "relu", "avg_pool2d"}
