"""Runtime settings that are not tracked params (worker count), and the stages' logging set-up."""

from __future__ import annotations

import logging
import os


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
