"""Stages `pretrain@stage1`, `pretrain@stage2`, `pretrain@realonly`: contrastive audio–text training.

stage1    synthetic captions of AudioSet; audio tower from the tagger, text tower from text_encoder
stage2    real captions (AudioCaps + Clotho + MACS), starting from stage 1 with a fresh optimizer/schedule
realonly  stage 2's data and schedule without stage 1 (the baseline for "does synthetic data help")

DVC runs (through the launcher, $BLAT_NPROC processes):
  python -m blat_core.app.launch stages/pretrain.py stage1 --tagger data/models/tagger
      --audioset data/prepared/audioset --synthetic data/synthetic/captions.parquet
      --val data/prepared/audiocaps --out data/models/blat_stage1 --metrics metrics/pretrain_stage1.json
      --curves metrics/pretrain_stage1_live --scratch scratch/pretrain_stage1
  ... stage2 --init data/models/blat_stage1 --real data/prepared/{audiocaps,clotho,macs} ...
  ... realonly --tagger data/models/tagger --real ... ...
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core import compute
from blat_core.atomic import atomic_path, write_json
from blat_core.data.pairs import RetrievalSet, caption_pairs, synthetic_pairs
from blat_core.models.blat_model import build_biencoder, init_audio_from_tagger, load_blat, save_blat
from blat_core.models.checkpoints import read_sidecar
from blat_core.models.text.encoder import TextEncoderParams, Tokenizer
from blat_core.params import ParamsError, load_section
from blat_core.runtime import loader_workers, run_main, setup_logging
from blat_core.train import checkpointing
from blat_core.train.distributed import Ranks
from blat_core.train.pretrain import PretrainParams, pretrain

log = logging.getLogger("pretrain")
CODE = [Path(__file__).resolve(), Path(__file__).resolve().parents[1] / "blat_core"]
VAL_SPLIT = "val"  # AudioCaps val: the held-out split for model selection


def run_pretrain(args: argparse.Namespace, params: PretrainParams, text: TextEncoderParams | None, ranks: Ranks,
                 stop_after: int | None = None) -> dict | None:  # fmt: skip
    """Build or load the model, train, export on rank 0; returns the metrics (None when stopped early)."""
    device = ranks.start(compute.pick_device())
    compute.seed_everything(params.seed)
    compute.deterministic_cpu()
    if args.stage == "stage2":
        model, tokenizer, _ = load_blat(args.init)
        config = dict(read_sidecar(args.init / "blat", kind="biencoder")[0])
        inputs = [args.init / "blat.safetensors"]
    else:
        audio_config = {**read_sidecar(args.tagger / "tagger", kind="audio_encoder")[0], "num_classes": 0}
        config = {
            "audio": audio_config,
            "text": text.config(),
            "embed_dim": params.embed_dim,
            "logit_scale_init": params.logit_scale_init,
            "logit_scale_max": params.logit_scale_max,
            "sample_rate": audio_config["sample_rate"],
        }
        model = build_biencoder(config)
        init_audio_from_tagger(model, args.tagger)
        tokenizer = Tokenizer(config["text"]["folder"], text.max_tokens)
        inputs = [args.tagger / "tagger.safetensors"]
    if args.stage == "stage1":
        pairs = synthetic_pairs(args.audioset, args.synthetic)
        inputs += [args.synthetic]
    else:
        pairs = caption_pairs(args.real)
        inputs += [folder / "manifest.parquet" for folder in args.real]
    if pairs.sample_rates != {config["sample_rate"]}:
        raise ParamsError(
            f"the audio tower expects {config['sample_rate']} Hz, the pairs are at {pairs.sample_rates} Hz"
        )
    val = RetrievalSet.from_split(args.val, VAL_SPLIT)
    model.to(device)
    fingerprint = checkpointing.fingerprint([args.stage, params.for_stage(args.stage), config], inputs, CODE)
    best, summary = pretrain(
        model, tokenizer, pairs, val, params, args.stage, device, ranks,
        checkpointing.Checkpointer(args.scratch, fingerprint), args.curves, loader_workers(), stop_after,
    )  # fmt: skip
    if best is None or not ranks.is_main:
        return None
    meta = {"stage": args.stage, "best": summary["best"], "params": params.for_stage(args.stage)}
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        save_blat(tmp, model, best, config, tokenizer, meta)
    return {
        "pretrain": {
            args.stage: {
                "train_pairs": len(pairs),
                "best": _rounded(summary["best"]),
                "final": _rounded(summary["history"][-1]),
            }
        }
    }


def _rounded(entry: dict) -> dict:
    """A validation record with 6 decimals (metrics files diff cleanly)."""
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 6) for k, v in entry.items()}


def main(argv: list[str] | None = None, stop_after: int | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["stage1", "stage2", "realonly"])
    parser.add_argument("--tagger", type=Path, help="tagger model folder (stage1, realonly)")
    parser.add_argument("--init", type=Path, help="stage-1 model folder (stage2)")
    parser.add_argument("--audioset", type=Path, help="prepared AudioSet (stage1)")
    parser.add_argument("--synthetic", type=Path, help="synthetic captions Parquet (stage1)")
    parser.add_argument("--real", type=Path, nargs="+", help="prepared captioned datasets (stage2, realonly)")
    parser.add_argument("--val", type=Path, required=True, help="prepared AudioCaps (its val split validates)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    needed = {"stage1": ("tagger", "audioset", "synthetic"), "stage2": ("init", "real"), "realonly": ("tagger", "real")}
    missing = [f"--{name}" for name in needed[args.stage] if getattr(args, name) is None]
    if missing:
        parser.error(f"{args.stage} needs {' '.join(missing)}")
    ranks = Ranks.from_env()
    setup_logging(ranks.rank)
    params = load_section(args.params, "pretrain", PretrainParams)
    text = None if args.stage == "stage2" else load_section(args.params, "text_encoder", TextEncoderParams)
    metrics = run_pretrain(args, params, text, ranks, stop_after)
    if metrics is not None:
        write_json(args.metrics, metrics)
    ranks.stop()


if __name__ == "__main__":
    run_main(main)
