"""BLAT_CPU_RUNTIME: the portable mode pins the kernels whatever the inherited environment says (the same
gradient bits with ATen/MKL/oneDNN variables set to other instruction sets), stamps what computed, and an
unknown mode is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIBRARY_VARS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "BLAT_CPU_THREADS", "BLAT_CPU_RUNTIME")


def _digest(**env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in LIBRARY_VARS}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "cpu_digest.py")], env={**base, **env},
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _has_avx2() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and " avx2" in cpuinfo.read_text()


@pytest.mark.skipif(not _has_avx2(), reason="the portable runtime's floor is AVX2 (x86-64-v3); this CPU lacks it")
def test_portable_mode_gives_the_same_bits_whatever_the_environment_asks():
    clean = _digest(BLAT_CPU_RUNTIME="portable")
    assert clean["stamp"] | {"torch": ""} == {"device": "cpu", "torch": "", "runtime": "portable",
                                               "cpu_capability": "AVX2", "threads": 2, "onednn": False,
                                               "mkl_cbwr": "COMPATIBLE"}  # fmt: skip
    wide = _digest(BLAT_CPU_RUNTIME="portable", ATEN_CPU_CAPABILITY="avx512", MKL_CBWR="AVX512",
                   ONEDNN_MAX_CPU_ISA="AVX512_CORE")  # fmt: skip
    narrow = _digest(BLAT_CPU_RUNTIME="portable", ATEN_CPU_CAPABILITY="default", ONEDNN_MAX_CPU_ISA="SSE41")
    assert clean["digest"] == wide["digest"] == narrow["digest"]
    assert _digest(BLAT_CPU_RUNTIME="portable", BLAT_CPU_THREADS="1")["stamp"]["threads"] == 1


def test_native_mode_is_stamped_as_such_and_an_unknown_mode_is_refused():
    native = _digest()
    assert native["stamp"]["runtime"] == "native" and native["stamp"]["cpu_capability"]
    done = subprocess.run([sys.executable, "-c", "import blat_core"], env={**os.environ, "BLAT_CPU_RUNTIME": "fast"},
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and "BLAT_CPU_RUNTIME must be one of native, portable" in done.stderr
