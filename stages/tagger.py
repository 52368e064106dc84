"""Stage `tagger`: train CNN14 on the prepared AudioSet training clips (multi-label BCE), or import
the official PANNs checkpoint when `tagger.checkpoint` is a path; evaluate mAP on AudioSet eval.

DVC runs: python stages/tagger.py --audioset data/prepared/audioset --out data/models/tagger
          --metrics metrics/tagger.json --curves metrics/tagger_live --scratch scratch/tagger
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from blat_core import batching, training
from blat_core.atomic import atomic_path, write_json
from blat_core.audio.encoder import AudioEncoderParams, build_audio_encoder
from blat_core.audio.panns import import_panns
from blat_core.checkpoints import save_model
from blat_core.params import ParamsError, load_section
from blat_core.prepared import PreparedDataset
from blat_core.runtime import loader_workers, run_main, setup_logging
from blat_core.tagging import (
    TaggerParams,
    label_frequency_map,
    mean_average_precision,
    multi_hot,
    predict,
    read_classes,
    tagger_step,
)

log = logging.getLogger("tagger")
CODE = [Path(__file__).resolve(), Path(__file__).resolve().parents[1] / "blat_core"]


def run_tagger(
    tagger: TaggerParams,
    encoder: AudioEncoderParams,
    audioset: Path,
    out: Path,
    curves: Path | None,
    scratch: Path,
    workers: int,
    stop_after: int | None = None,
) -> dict:
    """Train (or import) and evaluate; writes the model to `out`; returns the metrics."""
    prepared = PreparedDataset(audioset)
    if prepared.sample_rate != encoder.sample_rate:
        raise ParamsError(
            f"audio_encoder.sample_rate={encoder.sample_rate} but {audioset} was prepared at "
            f"{prepared.sample_rate} Hz (prepare.sample_rate): make them equal"
        )
    classes = read_classes(audioset)
    train_rows, eval_rows = list(prepared.rows(trainable=True)), list(prepared.rows(split="eval"))
    train_targets = multi_hot([r["tag_mids"] for r in train_rows], classes)
    eval_targets = multi_hot([r["tag_mids"] for r in eval_rows], classes)
    device = training.pick_device()
    training.seed_everything(tagger.seed)
    training.deterministic_cpu()
    config = encoder.config(num_classes=len(classes))
    model = build_audio_encoder(config).to(device)
    if tagger.checkpoint:
        import_panns(tagger.checkpoint, model)
    else:
        fingerprint = training.fingerprint([dataclasses.asdict(tagger), config], [audioset / "manifest.parquet"], CODE)
        reached = _train(
            model,
            tagger,
            prepared,
            [r["audio_id"] for r in train_rows],
            train_targets,
            device,
            training.Checkpointer(scratch, fingerprint),
            curves,
            workers,
            stop_after,
        )
        if reached < tagger.steps:
            return {"stopped_at": reached}

    scores = predict(model, prepared, [r["audio_id"] for r in eval_rows], tagger.batch_size, device, workers)
    average_precision, scored = mean_average_precision(eval_targets, scores)
    metrics = {
        "tagger": {
            "source": "imported" if tagger.checkpoint else "trained",
            "audioset_eval": {
                "mAP": round(average_precision, 6),
                "classes_scored": scored,
                "clips": len(eval_rows),
                "label_frequency_mAP": round(label_frequency_map(train_targets, eval_targets), 6),
            },
            "train_clips": len(train_rows),
        }
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        save_model(
            tmp / "tagger",
            model.state_dict(),
            kind="audio_encoder",
            config=config,
            meta={"classes": [list(c) for c in classes], "source": metrics["tagger"]["source"]},
        )
    return metrics


def _train(
    model,
    tagger: TaggerParams,
    prepared: PreparedDataset,
    ids: list[str],
    targets: np.ndarray,
    device,
    checkpointer: training.Checkpointer,
    curves: Path | None,
    workers: int,
    stop_after: int | None,
) -> int:
    if tagger.balanced_sampling:
        members = [np.flatnonzero(targets[:, c]) for c in range(targets.shape[1])]
        plan = lambda step: training.balanced_batches(tagger.seed, step, members, tagger.batch_size)  # noqa: E731
    else:
        plan = lambda step: training.epoch_batches(tagger.seed, step, len(ids), tagger.batch_size)  # noqa: E731
    dataset = batching.ClipDataset(prepared, ids, max_samples=int(tagger.max_seconds * prepared.sample_rate))

    def batches(start: int):
        sampler = training.StepBatchSampler(plan, tagger.seed, start, tagger.steps)
        return batching.loader(dataset, sampler, workers, device)

    optimizer = training.adam(model.parameters(), tagger.lr, tagger.weight_decay, device)
    forward = training.maybe_compile(model, device)
    target_tensor = torch.from_numpy(targets)
    reached = training.train_steps(
        model,
        optimizer,
        batches,
        lambda batch: tagger_step(forward, optimizer, batch, target_tensor, tagger, device),
        tagger.steps,
        lambda step: training.warmup_cosine(step, tagger.steps, tagger.warmup_steps),
        checkpointer,
        curves,
        tagger.log_every,
        tagger.checkpoint_every,
        stop_after,
    )
    if reached == tagger.steps:
        checkpointer.clear()
    return reached


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
    metrics = run_tagger(tagger, encoder, args.audioset, args.out, args.curves, args.scratch, loader_workers())
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
