"""Run a stage script under torchrun with $BLAT_NPROC processes (default 1: run it directly).

The process count is a runtime choice, not a tracked param: changing the GPU count must not
invalidate a run. `python -m blat_core.app.launch stages/pretrain.py ARGS...`; multi-node: run torchrun
yourself with the same script and arguments (see the README).
"""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit("usage: python -m blat_core.app.launch SCRIPT [ARGS...]")
    processes = int(os.environ.get("BLAT_NPROC", "1"))
    if processes < 1:
        raise SystemExit(f"BLAT_NPROC must be >= 1, got {processes}")
    if processes == 1 and "RANK" not in os.environ:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
        return
    from torch.distributed.run import main as torchrun

    torchrun(["--standalone", f"--nproc-per-node={processes}", *argv])


if __name__ == "__main__":
    main()
