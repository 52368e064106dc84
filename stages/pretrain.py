"""Stages `pretrain@stage1`, `pretrain@stage2`, `pretrain@realonly`: contrastive audio–text training.

stage1    synthetic captions of AudioSet; audio tower from the tagger, text tower from text_encoder
stage2    real captions (pretrain.real_datasets: AudioCaps + Clotho + MACS, or your own captioned sets), starting
          from stage 1 with a fresh optimizer/schedule
realonly  stage 2's data and schedule without stage 1 (the baseline for "does synthetic data help")

DVC runs (through the launcher, $BLAT_NPROC processes):
  python -m blat_core.app.launch stages/pretrain.py stage1 --tagger data/models/tagger
      --audioset data/prepared/audioset --synthetic data/synthetic/captions.parquet
      --val data/prepared/audiocaps --out data/models/blat_stage1 --metrics metrics/pretrain_stage1.json
      --curves metrics/pretrain_stage1_live --scratch scratch/pretrain_stage1
  ... stage2 --init data/models/blat_stage1 --real-from data/real_captions.json ...
  ... realonly --tagger data/models/tagger --real-from data/real_captions.json ...
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.data.real_captions import pool_folders
from blat_core.distributed import Ranks
from blat_core.models.text.encoder import TextEncoderParams
from blat_core.params import load_section
from blat_core.runtime import loader_workers, run_main, setup_logging
from blat_core.train.pretrain import PretrainParams, StageInputs, run_stage

log = logging.getLogger("pretrain")
CODE = [Path(__file__).resolve()]  # the resume fingerprint follows this script's imports


def main(argv: list[str] | None = None, stop_after: int | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["stage1", "stage2", "realonly"])
    parser.add_argument("--tagger", type=Path, help="tagger model folder (stage1, realonly)")
    parser.add_argument("--init", type=Path, help="stage-1 model folder (stage2)")
    parser.add_argument("--audioset", type=Path, help="prepared AudioSet (stage1)")
    parser.add_argument("--synthetic", type=Path, help="synthetic captions Parquet (stage1)")
    parser.add_argument("--real", type=Path, nargs="+", help="prepared captioned datasets (stage2, realonly)")
    parser.add_argument("--real-from", type=Path, help="or the real_captions stage's file naming them (dvc.yaml)")
    parser.add_argument("--val", type=Path, required=True, help="prepared AudioCaps (its val split validates)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    real = tuple(args.real or ()) + tuple(pool_folders(args.real_from) if args.real_from else ())
    inputs = StageInputs(args.val, args.tagger, args.init, args.audioset, args.synthetic, real)
    if missing := inputs.missing(args.stage):
        parser.error(f"{args.stage} needs {' '.join('--' + name for name in missing)}")
    ranks = Ranks.from_env()
    setup_logging(ranks.rank)
    params = load_section(args.params, "pretrain", PretrainParams)
    text = None if args.stage == "stage2" else load_section(args.params, "text_encoder", TextEncoderParams)
    metrics = run_stage(args.stage, params, text, inputs, args.out, args.curves, args.scratch, ranks, loader_workers(),
                        CODE, stop_after)  # fmt: skip
    if metrics is not None:
        write_json(args.metrics, metrics)
    ranks.stop()


if __name__ == "__main__":
    run_main(main)
