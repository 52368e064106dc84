"""Stage `real_captions`: which prepared captioned sets stage 2 and the real-only baseline train on
(`pretrain.real_datasets`), with a digest of each, in one file the pre-training stages depend on
(blat_core.data.real_captions says why).

DVC runs: python stages/real_captions.py --prepared data/prepared --out data/real_captions.json
          --cache scratch/real_captions
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.data.real_captions import build_pool
from blat_core.params import ParamsError, load_params_file
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("real_captions")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="scratch folder where each chosen set's digest is kept beside the "
                        "stat of its files, so an unchanged set is not read again")  # fmt: skip
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    names = load_params_file(args.params).get("pretrain", {}).get("real_datasets", ["audiocaps", "clotho", "macs"])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ParamsError(f"pretrain.real_datasets must be a list of dataset names, got {names!r}")
    pool = build_pool(names, args.prepared, args.cache)
    for entry in pool["datasets"]:
        log.info("%s: %d training clips, %d captions", entry["name"], entry["training_clips"],
                 entry["training_captions"])  # fmt: skip
    write_json(args.out, pool)


if __name__ == "__main__":
    run_main(main)
