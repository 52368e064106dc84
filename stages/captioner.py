"""Stage `captioner@<variant>`: train the captioner on AudioCaps train frame features, with the clip's
AudioSet tags (`tags`) or without (`notags`); evaluate on AudioCaps test (Table 3 rows).

DVC runs: python stages/captioner.py <tags|notags> --audiocaps data/prepared/audiocaps
          --audioset data/prepared/audioset --features data/features/audiocaps
          --out data/models/captioner_<variant> --metrics metrics/captioner_<variant>.json
          --curves metrics/captioner_<variant>_live --scratch scratch/captioner_<variant>
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np

from blat_core import compute
from blat_core.atomic import atomic_path, write_json
from blat_core.data.features import FrameFeatures
from blat_core.data.prepared import PreparedDataset, multi_hot, read_classes
from blat_core.eval.caption_metrics import caption_scores
from blat_core.models.captioner.io import save_captioner
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging
from blat_core.train import checkpointing
from blat_core.train.captioner import CaptionData, CaptionerParams, generate, train_captioner

log = logging.getLogger("captioner")
CODE = [Path(__file__).resolve(), Path(__file__).resolve().parents[1] / "blat_core"]


def load_split(prepared: PreparedDataset, features: FrameFeatures, classes, split: str) -> CaptionData:
    rows = list(prepared.rows(split=split))
    return CaptionData(
        ids=[r["audio_id"] for r in rows],
        frames=[features.frames(r["audio_id"]).astype(np.float32) for r in rows],
        tags=multi_hot([r["tag_mids"] for r in rows], classes),
        captions=[list(r["captions"]) for r in rows],
    )


def run_captioner(
    variant: str,
    params: CaptionerParams,
    audiocaps: Path,
    audioset: Path,
    features: Path,
    out: Path,
    curves: Path | None,
    scratch: Path,
    stop_after_epochs: int | None = None,
) -> dict:
    """Train, evaluate on AudioCaps test and write the model to `out`; returns the metrics
    ({"stopped_after_epochs": n} when `stop_after_epochs` cut the run short)."""
    if variant not in ("tags", "notags"):
        raise SystemExit(f"variant must be 'tags' or 'notags', got {variant!r}")
    device = compute.pick_device()
    compute.seed_everything(params.seed)
    compute.deterministic_cpu()
    prepared, frames, classes = PreparedDataset(audiocaps), FrameFeatures(features), read_classes(audioset)
    train, val, test = (load_split(prepared, frames, classes, s) for s in ("train", "val", "test"))
    vocab = Vocabulary.build([c for caps in train.captions for c in caps])
    config = {
        "feature_dim": int(train.frames[0].shape[1]),
        "vocab_size": len(vocab),
        "num_tags": len(classes),
        "use_tags": variant == "tags",
    }
    model = Captioner(**config).to(device)
    fingerprint = checkpointing.fingerprint(
        [dataclasses.asdict(params), config],
        [audiocaps / "manifest.parquet", audioset / "classes.csv", features / "index.parquet"],
        CODE,
    )
    checkpointer = checkpointing.Checkpointer(scratch, fingerprint)
    state, history = train_captioner(model, vocab, train, val, params, device, checkpointer, curves, stop_after_epochs)
    if state is None:
        return {"stopped_after_epochs": len(history)}
    model.load_state_dict(state)
    candidates = generate(model, vocab, test, params, device)
    scores = caption_scores(dict(zip(test.ids, test.captions, strict=True)), candidates, params.local_models())
    with atomic_path(out) as tmp:
        tmp.mkdir()
        save_captioner(tmp, state, config, vocab, classes, dataclasses.asdict(params))
    examples = {i: candidates[i] for i in test.ids[:5]}
    log.info("examples: %s", examples)
    return {
        "captioner": {
            variant: {"audiocaps_test": scores, "val_cider": [round(h, 6) for h in history], "vocabulary": len(vocab)}
        }
    }


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
        args.variant, params, args.audiocaps, args.audioset, args.features, args.out, args.curves, args.scratch
    )
    write_json(args.metrics, metrics)
    log.info("AudioCaps test CIDEr %.4f", metrics["captioner"][args.variant]["audiocaps_test"]["cider"])


if __name__ == "__main__":
    run_main(main)
