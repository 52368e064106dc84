"""Stage `make_demo`: generate the deterministic demo corpus in the eight datasets' real formats.

DVC runs: python stages/make_demo.py --out data/demo
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from blat_core.atomic import atomic_path
from blat_core.data.demo.corpus import DemoParams, build_corpus
from blat_core.params import load_section
from blat_core.runtime import num_workers, run_main, setup_logging

log = logging.getLogger("make_demo")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "demo", DemoParams)
    started = time.perf_counter()
    with atomic_path(args.out) as tmp:
        counts = build_corpus(params, tmp, num_workers())
    log.info("wrote %s in %.1f s: %s", args.out, time.perf_counter() - started, counts)


if __name__ == "__main__":
    run_main(main)
