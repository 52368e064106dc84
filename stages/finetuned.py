"""Stage `finetuned@<name>`: fine-tune a BLAT model's audio tower and a linear head on a labelled set and keep the
result as a model folder (params `finetuned.<name>`; blat_core.train.finetuned).

DVC runs: python stages/finetuned.py <name> --models data/models --prepared data/prepared
          --out data/finetuned/<name> --metrics metrics/finetuned_<name>.json --scratch scratch/finetuned_<name>
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.params import ParamsError, from_dict, load_params_file
from blat_core.runtime import run_main, setup_logging
from blat_core.train.finetuned import FinetunedParams, keep_finetuned

log = logging.getLogger("finetuned")
CODE = [Path(__file__).resolve()]  # the resume fingerprint follows this script's imports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the entry of params.yaml's `finetuned` section")
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    entries = load_params_file(args.params).get("finetuned") or {}
    if args.name not in entries:
        raise ParamsError(f"finetuned.{args.name} is missing from {args.params}")
    params = from_dict(FinetunedParams, entries[args.name], f"finetuned.{args.name}")
    metrics = keep_finetuned(args.name, params, args.models, args.prepared, args.out, args.scratch, CODE)
    log.info("%s: %s on %d held-out clips", args.name, metrics[args.name]["test"], metrics[args.name]["test_clips"])
    write_json(args.metrics, {"finetuned": metrics})


if __name__ == "__main__":
    run_main(main)
