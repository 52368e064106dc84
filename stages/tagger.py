"""Stage `tagger`: train CNN14 on the prepared AudioSet training clips (multi-label BCE), or import
the official PANNs checkpoint when `tagger.checkpoint` is a path; evaluate mAP on AudioSet eval.

DVC runs: python stages/tagger.py --audioset data/prepared/audioset --out data/models/tagger
          --metrics metrics/tagger.json --curves metrics/tagger_live --scratch scratch/tagger
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.models.audio.encoder import AudioEncoderParams
from blat_core.params import load_section
from blat_core.runtime import loader_workers, run_main, setup_logging
from blat_core.train.tagger import TaggerParams, run_tagger

log = logging.getLogger("tagger")
CODE = [Path(__file__).resolve()]  # the resume fingerprint follows this script's imports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audioset", type=Path, required=True, help="prepared AudioSet folder")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True, help="DVCLive folder for training curves")
    parser.add_argument("--scratch", type=Path, required=True, help="git-ignored folder for resume checkpoints")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    tagger = load_section(args.params, "tagger", TaggerParams)
    encoder = load_section(args.params, "audio_encoder", AudioEncoderParams)
    metrics = run_tagger(
        tagger, encoder, args.audioset, args.out, args.curves, args.scratch, loader_workers(), CODE
    )
    write_json(args.metrics, metrics)
    result = metrics["tagger"]["audioset_eval"]
    log.info(
        "AudioSet eval mAP %.4f (label-frequency baseline %.4f) over %d classes",
        result["mAP"],
        result["label_frequency_mAP"],
        result["classes_scored"],
    )


if __name__ == "__main__":
    run_main(main)
