"""Stage `synthesize`: the tag filter, then beam-search captions from the tag-guided captioner for every
AudioSet clip it keeps -> data/synthetic/captions.parquet (audio_id, caption, tags, score, captioner
digest, beam). Resumable; several processes split the chunks when launched with torchrun.

DVC runs: python stages/synthesize.py --audioset data/prepared/audioset --audiocaps data/prepared/audiocaps
          --features data/features/audioset --captioner data/models/captioner_tags --out data/synthetic
          --metrics metrics/synthesize.json --scratch scratch/synthesize
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core import compute
from blat_core.atomic import write_json
from blat_core.bootstrap.synthesis import SynthesizeParams, run_synthesize
from blat_core.distributed import Ranks
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("synthesize")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audioset", type=Path, required=True, help="prepared AudioSet folder")
    parser.add_argument("--audiocaps", type=Path, required=True, help="prepared AudioCaps folder (its labels)")
    parser.add_argument("--features", type=Path, required=True, help="AudioSet frame features")
    parser.add_argument("--captioner", type=Path, required=True, help="model folder of captioner@tags")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True, help="git-ignored folder for finished chunks")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "synthesize", SynthesizeParams)
    ranks = Ranks.from_env()
    device = ranks.start(compute.pick_device())
    metrics = run_synthesize(
        params, args.audioset, args.audiocaps, args.features, args.captioner, args.out, args.scratch, ranks, device
    )
    if metrics is not None:
        write_json(args.metrics, metrics)
        result = metrics["synthesize"]
        log.info("%d captions (%d distinct), %.1f clips/s", result["captions"], result["distinct_captions"],
                 result["throughput"]["clips_per_s"])  # fmt: skip
    ranks.stop()


if __name__ == "__main__":
    run_main(main)
