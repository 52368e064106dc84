"""Runtime settings that are not tracked params (worker count), the stages' logging set-up, how an entry
point reports a params mistake, and the tie between worker processes and their parent."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

from blat_core.params import ParamsError

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def setup_logging(rank: int = 0) -> None:
    """INFO lines from the main process; other ranks only warn (rank 0 alone logs progress)."""
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def num_workers() -> int:
    """Worker processes for CPU-bound stages: $BLAT_NUM_WORKERS, else every core (not a tracked param)."""
    value = os.environ.get("BLAT_NUM_WORKERS", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise SystemExit(f"BLAT_NUM_WORKERS must be a positive integer, got {value!r}")
        return int(value)
    return os.cpu_count() or 1


def loader_workers() -> int:
    """DataLoader worker processes: $BLAT_LOADER_WORKERS, else 8 with a GPU and 0 on CPU (where the
    workers would only compete with the training threads for the same cores)."""
    value = os.environ.get("BLAT_LOADER_WORKERS", "")
    if value:
        if not value.isdigit():
            raise SystemExit(f"BLAT_LOADER_WORKERS must be a non-negative integer, got {value!r}")
        return int(value)
    import torch

    return 8 if torch.cuda.is_available() else 0


def run_main(main: Callable[[], object]) -> None:
    """Run a stage's `main`; a params mistake prints as one line (no traceback) and exits with status 2."""
    try:
        main()
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def die_with_parent(parent: int) -> None:
    """In a worker process: get SIGKILL when the process that started it dies, even by SIGKILL (Linux;
    elsewhere a no-op), so a killed stage leaves no orphaned workers holding memory."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
