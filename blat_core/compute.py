"""Where and how tensors compute: the device, bf16 autocast, optional torch.compile, seeds and
deterministic CPU kernels. Runtime choices ($BLAT_DEVICE, $BLAT_COMPILE), not tracked params."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def pick_device() -> torch.device:
    """$BLAT_DEVICE if set, else CUDA when present, else CPU (a runtime choice, not a tracked param)."""
    return torch.device(os.environ.get("BLAT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU; full fp32 on CPU (where determinism matters more than speed)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compile_enabled(device: torch.device) -> bool:
    """$BLAT_COMPILE=1 on a GPU: a runtime choice (results are unchanged), not a tracked param."""
    return os.environ.get("BLAT_COMPILE") == "1" and device.type == "cuda"


def maybe_compile(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """torch.compile when `compile_enabled`."""
    return torch.compile(module) if compile_enabled(device) else module


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def deterministic_cpu() -> None:
    """Same seed, same result on CPU: deterministic kernels, one intra-op order."""
    torch.use_deterministic_algorithms(True, warn_only=True)
