"""What computed on the CPU: the runtime stamp recorded beside every evaluation's metrics.

PyTorch's CPU results depend on the machine: ATen dispatches its vectorised kernels by the widest instruction
set the CPU has (AVX2, AVX-512), oneDNN picks convolution kernels and blockings by instruction set and cache
sizes, and MKL picks a GEMM code path by CPU model and vendor. A few training steps later the differences
are different models (measured: tagger mAP 0.2400 on an Intel AVX-512 Xeon, 0.2406 on an AMD AVX-512 EPYC,
0.2612 on an AMD AVX2 EPYC, from the same code and data). Results are bitwise repeatable on one machine.

A `portable` mode (ATen's AVX2 kernels, oneDNN off, MKL_CBWR=COMPATIBLE, fixed threads) was removed: it gave
the same bits on AMD CPUs with AVX2 and with AVX-512 but not on an Intel Xeon, and the layers that moved with
MKL's code branch are every GEMM (the mel projection, each convolution, the linear layers), which torch runs
through MKL with no switch to another library (docs/reproducibility.md has the evidence;
`scripts/cpu_digest.py --layers` prints a machine's per-layer digests).
"""

from __future__ import annotations

import os

REMOVED = ("BLAT_CPU_RUNTIME=portable was removed: MKL's GEMM gives other bits on CPUs of another vendor, so no "
           "mode of these libraries reproduces a run across CPU models (docs/reproducibility.md); unset it")


def check_environment() -> None:
    """Refuse $BLAT_CPU_RUNTIME other than unset or `native` (a stale `portable` would silently do nothing)."""
    value = os.environ.get("BLAT_CPU_RUNTIME", "") or "native"
    if value == "portable":
        raise SystemExit(REMOVED)
    if value != "native":
        raise SystemExit(f"BLAT_CPU_RUNTIME must be native (or unset), got {value!r}")


def stamp(device) -> dict:
    """What computed: recorded beside the metrics so that two runs on different CPUs say so."""
    import torch

    cpu = {"runtime": "native", "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads(), "onednn": bool(torch.backends.mkldnn.enabled),
           "mkl_cbwr": os.environ.get("MKL_CBWR", "AUTO")}  # fmt: skip
    return {"device": str(getattr(device, "type", device)), "torch": torch.__version__.split("+")[0], **cpu}
