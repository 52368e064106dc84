"""The tagger (SPEC §2): CNN14 trained on AudioSet tags with multi-label BCE through the shared loop, or
imported from the official PANNs checkpoint; scored by mAP on AudioSet eval."""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blat_core import compute
from blat_core.atomic import atomic_path, write_json
from blat_core.data import batching
from blat_core.data.prepared import PreparedDataset, multi_hot, read_classes
from blat_core.eval.metrics.classification import label_frequency_map, mean_average_precision
from blat_core.models.audio.encoder import AudioEncoderParams, build_audio_encoder
from blat_core.models.audio.panns import import_panns
from blat_core.models.checkpoints import save_model
from blat_core.params import bounded
from blat_core.train import checkpointing, loop, sampling, schedules

log = logging.getLogger(__name__)


@dataclass
class TaggerParams:
    """The `tagger` section of params.yaml."""

    checkpoint: str  # an official PANNs .pth to import instead of training; "" trains
    steps: int = bounded(ge=1)
    batch_size: int = bounded(ge=2)
    lr: float = bounded(gt=0.0)
    weight_decay: float = bounded(ge=0.0)
    warmup_steps: int = bounded(ge=0)
    max_seconds: float = bounded(gt=0.0)
    mixup_alpha: float = bounded(ge=0.0)
    balanced_sampling: bool = False
    log_every: int = bounded(ge=1, default=10)
    checkpoint_every: int = bounded(ge=1, default=100)
    seed: int = 0


def tagger_step(model, optimizer, batch, targets: torch.Tensor, params: TaggerParams, device) -> dict:
    """One optimisation step of multi-label BCE (with mixup when `mixup_alpha` > 0)."""
    waves, lengths, indices = batch
    audio = batching.to_device_float(waves, device)
    lengths = lengths.to(device)
    target = targets[indices].to(device).float()  # (batch, classes) 0/1, kept as bool between steps
    if params.mixup_alpha > 0:
        lam = float(np.random.beta(params.mixup_alpha, params.mixup_alpha))
        audio = lam * audio + (1 - lam) * audio.roll(1, dims=0)
        lengths = torch.maximum(lengths, lengths.roll(1))
        target = lam * target + (1 - lam) * target.roll(1, dims=0)
    with compute.autocast(device):
        logits = model(audio, lengths)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "batch_size": len(indices)}  # read (a host sync) only when logged


@torch.no_grad()
def predict(model, prepared: PreparedDataset, ids: list[str], batch_size: int, device, workers: int = 0) -> np.ndarray:
    """Sigmoid tag scores (clips, classes) on full clips, in eval mode."""
    model.eval()
    scores = []
    for wave, lengths, _ in batching.full_clips(prepared, ids, batch_size, device, workers, desc="tagger eval"):
        with compute.autocast(device):
            logits = model(wave, lengths)
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros((0, 0), dtype=np.float32)


def run_tagger(
    tagger: TaggerParams,
    encoder: AudioEncoderParams,
    audioset: Path,
    out: Path,
    curves: Path | None,
    scratch: Path,
    workers: int,
    code: list[Path],
    stop_after: int | None = None,
) -> dict:
    """Train (or import) and evaluate; writes the model to `out`; returns the metrics."""
    prepared = PreparedDataset(audioset)
    classes = read_classes(audioset)
    # Columnar: at AudioSet's 2M training clips, rows as dicts (≈4 GB) and float32 targets (4.4 GB) would not fit.
    train_mask, eval_rows = prepared.training_mask(), prepared.evaluation_rows("eval")
    train_ids = [prepared.ids[i] for i in np.flatnonzero(train_mask)]
    train_targets = prepared.multi_hot("tag_mids", [mid for mid, _ in classes], train_mask, dtype=np.bool_)
    eval_targets = multi_hot([r["tag_mids"] for r in eval_rows], classes)
    device = compute.pick_device()
    compute.seed_everything(tagger.seed)
    compute.deterministic_cpu()
    config = encoder.config(prepared.sample_rate, num_classes=len(classes))
    model = build_audio_encoder(config).to(device)
    if tagger.checkpoint:
        import_panns(tagger.checkpoint, model)
        if curves is not None:  # no training, no curves: the stage's declared DVCLive outputs say so
            (curves / "plots" / "metrics").mkdir(parents=True, exist_ok=True)
            write_json(curves / "metrics.json", {"imported": Path(tagger.checkpoint).name, "step": 0})
    else:
        fingerprint = checkpointing.fingerprint(
            [dataclasses.asdict(tagger), config], [audioset / "manifest.parquet"], code
        )
        reached = train_tagger(
            model,
            tagger,
            prepared,
            train_ids,
            train_targets,
            device,
            checkpointing.Checkpointer(scratch, fingerprint),
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
            "train_clips": len(train_ids),
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


def train_tagger(
    model,
    tagger: TaggerParams,
    prepared: PreparedDataset,
    ids: list[str],
    targets: np.ndarray,
    device,
    checkpointer: checkpointing.Checkpointer,
    curves: Path | None,
    workers: int,
    stop_after: int | None,
) -> int:
    if tagger.balanced_sampling:
        members = [np.flatnonzero(targets[:, c]) for c in range(targets.shape[1])]
        plan = lambda step: sampling.balanced_batches(tagger.seed, step, members, tagger.batch_size)  # noqa: E731
    else:
        plan = lambda step: sampling.epoch_batches(tagger.seed, step, len(ids), tagger.batch_size)  # noqa: E731
    dataset = batching.ClipDataset(prepared, ids, max_samples=int(tagger.max_seconds * prepared.sample_rate))

    def batches(start: int):
        sampler = sampling.StepBatchSampler(plan, tagger.seed, start, tagger.steps)
        return batching.loader(dataset, sampler, workers, device)

    optimizer = loop.adam(model.parameters(), tagger.lr, tagger.weight_decay, device)
    forward = compute.maybe_compile(model, device)
    schedule = loop.LoopSchedule(
        tagger.steps,
        lambda step: schedules.warmup_cosine(step, tagger.steps, tagger.warmup_steps),
        tagger.log_every,
        tagger.checkpoint_every,
    )
    step_fn = functools.partial(tagger_step, forward, optimizer, targets=torch.from_numpy(targets), params=tagger,
                                device=device)  # fmt: skip
    reached = loop.train_steps(
        model, optimizer, batches, step_fn, schedule, checkpointer, curves, stop_after=stop_after
    )
    if reached == tagger.steps:
        checkpointer.clear()
    return reached
