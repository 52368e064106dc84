"""Stage `captioner@<variant>`: train the captioner on AudioCaps train frame features, with the clip's
AudioSet tags (`tags`) or without (`notags`); evaluate on AudioCaps test (Table 3 rows).

DVC runs: python stages/captioner.py <tags|notags> --audiocaps data/prepared/audiocaps
          --audioset data/prepared/audioset --features data/features/audiocaps
          --out data/models/captioner_<variant> --metrics metrics/captioner_<variant>.json
          --curves metrics/captioner_<variant>_live --scratch scratch/captioner_<variant>
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging
from blat_core.train.captioner import CaptionerParams, run_captioner

log = logging.getLogger("captioner")
CODE = [Path(__file__).resolve()]  # the resume fingerprint follows this script's imports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", choices=["tags", "notags"])
    parser.add_argument("--audiocaps", type=Path, required=True)
    parser.add_argument("--audioset", type=Path, required=True, help="prepared AudioSet (for classes.csv)")
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True, help="DVCLive folder for training curves")
    parser.add_argument("--scratch", type=Path, required=True, help="git-ignored folder for resume checkpoints")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "captioner", CaptionerParams)
    metrics = run_captioner(
        args.variant, params, args.audiocaps, args.audioset, args.features, args.out, args.curves, args.scratch, CODE
    )
    write_json(args.metrics, metrics)
    log.info("AudioCaps test CIDEr %.4f", metrics["captioner"][args.variant]["audiocaps_test"]["cider"])


if __name__ == "__main__":
    run_main(main)
