"""Which CPU kernels compute ($BLAT_CPU_RUNTIME, a runtime choice like $BLAT_DEVICE, not a tracked param).

PyTorch's CPU results depend on the machine: ATen dispatches its vectorised kernels by the widest instruction
set the CPU has (AVX2, AVX-512), oneDNN picks convolution kernels and blockings by instruction set and cache
sizes, and MKL picks a GEMM code path by CPU model (and vendor). A few training steps later the differences
are different models (measured: tagger mAP 0.2400 on an Intel AVX-512 Xeon, 0.2406 on an AMD AVX-512 EPYC,
0.2612 on an AMD AVX2 EPYC, from the same code and data).

    native    (default) the fastest kernels this CPU has; bitwise repeatable on one machine, not across CPUs
    portable  ATen's AVX2 kernels, convolutions through ATen (oneDNN off), MKL's vendor-neutral branch
              (MKL_CBWR=COMPATIBLE) and a fixed thread count ($BLAT_CPU_THREADS, default 2): the same bits on
              any x86-64 CPU with AVX2 (x86-64-v3), slower (docs/install.md has the measured cost)

The environment variables must be set before torch computes anything: `configure()` runs when `blat_core`
is imported; `apply_torch()` when `blat_core.compute` is.
"""

from __future__ import annotations

import os

MODES = ("native", "portable")
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"}
DEFAULT_THREADS = 2  # the committed dvc.lock's machines: 2 cores


def mode() -> str:
    value = os.environ.get("BLAT_CPU_RUNTIME", "") or "native"
    if value not in MODES:
        raise SystemExit(f"BLAT_CPU_RUNTIME must be one of {', '.join(MODES)}, got {value!r}")
    return value


def threads() -> int:
    value = os.environ.get("BLAT_CPU_THREADS", "") or str(DEFAULT_THREADS)
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"BLAT_CPU_THREADS must be a positive integer, got {value!r}")
    return int(value)


def configure() -> None:
    """Set the portable mode's library variables (overriding any inherited ones: a stray MKL_CBWR would give
    other bits while the metrics say portable). Nothing in native mode."""
    if mode() == "portable":
        os.environ.update(PORTABLE_ENV)


def apply_torch() -> None:
    """The portable mode's settings inside torch: oneDNN off, a fixed intra-op thread count."""
    if mode() != "portable":
        return
    import torch

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(threads())


def stamp(device) -> dict:
    """What computed: recorded beside the metrics so that two runs on different CPUs say so."""
    import torch

    cpu = {"runtime": mode(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads(), "onednn": bool(torch.backends.mkldnn.enabled),
           "mkl_cbwr": os.environ.get("MKL_CBWR", "AUTO")}  # fmt: skip
    return {"device": str(getattr(device, "type", device)), "torch": torch.__version__.split("+")[0], **cpu}
