"""Contrastive pre-training of the bi-encoder (SPEC §2): symmetric InfoNCE over the global batch, Adam,
linear warmup then cosine decay stepped every iteration, validation retrieval every `val_every` steps,
and the weights of the best validation geometric mean kept.

Under torchrun each process takes its slice of every global batch (the same crops as one process
would draw), embeddings are gathered with gradient and DDP averages the gradients: the update equals
the single-process update on the same global batch.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from blat_core import compute
from blat_core.atomic import atomic_path
from blat_core.data import batching
from blat_core.data.pairs import PairClips, Pairs, RetrievalSet, caption_pairs, synthetic_pairs
from blat_core.distributed import Ranks
from blat_core.models.biencoder import BiEncoder, ContrastiveLoss
from blat_core.models.blat_model import build_biencoder, init_audio_from_tagger, load_blat, save_blat
from blat_core.models.checkpoints import read_sidecar
from blat_core.models.embed import score_retrieval
from blat_core.models.text.encoder import TextEncoderParams, Tokenizer
from blat_core.params import ParamsError, bounded
from blat_core.train import checkpointing, loop, sampling, schedules

log = logging.getLogger(__name__)


@dataclass
class StageSchedule:
    """`pretrain.stage1` / `pretrain.stage2`: what differs between the two stages."""

    steps: int = bounded(ge=1)
    warmup_steps: int = bounded(ge=0)
    val_every: int = bounded(ge=1)


@dataclass
class PretrainParams:
    """The `pretrain` section. Settings shared by both stages sit directly under it (so that
    `dvc exp run -S pretrain.lr=3.0e-4` works as written); stage-specific ones under stage1/stage2."""

    batch_size: int = bounded(ge=1)  # the global batch, over all processes
    lr: float = bounded(gt=0.0)
    weight_decay: float = bounded(ge=0.0)
    max_seconds: float = bounded(gt=0.0)  # random crop to this length in training
    embed_dim: int = bounded(ge=1)
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float | None = None  # None: unclamped, as the reference
    eval_batch_size: int = bounded(ge=1, default=64)
    log_every: int = bounded(ge=1, default=10)
    checkpoint_every: int = bounded(ge=1, default=100)
    seed: int = 0
    stage1: StageSchedule | None = None
    stage2: StageSchedule | None = None
    # The real-only baseline's compute: stage 2's schedule ("stage2", the paper's comparison as we read it),
    # or as many steps as stage 1 + stage 2 together ("matched"; stage 2's warmup and validation cadence).
    realonly_compute: str = bounded(choices=("stage2", "matched"), default="stage2")
    # The captioned sets of stage 2 and the real-only baseline (prepare.datasets names: AudioCaps, Clotho, MACS, or
    # your own `recipe: captions` sets), read by the real_captions stage; the stages read its file.
    real_datasets: list[str] = dataclasses.field(default_factory=lambda: ["audiocaps", "clotho", "macs"])

    def for_stage(self, stage: str) -> dict:
        """The settings one stage reads (its fingerprint, recorded in the model's sidecar): the shared ones
        and its own schedule."""
        own = ("stage1", "stage2", "realonly_compute", "real_datasets")
        shared = {k: v for k, v in dataclasses.asdict(self).items() if k not in own}
        extra = {"realonly_compute": self.realonly_compute} if stage == "realonly" else {}
        return {**shared, **extra, "schedule": dataclasses.asdict(self.schedule(stage))}

    def schedule(self, stage: str) -> StageSchedule:
        """stage1's schedule, or stage2's (stage2; realonly unless compute-matched to stage 1 + stage 2)."""
        names = ["stage1"] if stage == "stage1" else ["stage2"]
        if stage == "realonly" and self.realonly_compute == "matched":
            names = ["stage2", "stage1"]
        for name in names:
            if getattr(self, name) is None:
                raise ParamsError(f"pretrain.{name} is missing")
        chosen = getattr(self, names[0])
        if len(names) == 2:
            return dataclasses.replace(chosen, steps=self.stage1.steps + self.stage2.steps)
        return chosen


@dataclass
class StepParts:
    """What one training step needs besides the batch."""

    forward: torch.nn.Module  # the (possibly DDP-wrapped) bi-encoder
    loss: ContrastiveLoss
    optimizer: torch.optim.Optimizer
    tokenizer: object
    pairs: Pairs
    device: torch.device


def contrastive_step(parts: StepParts, batch) -> dict[str, float]:
    """One update on this process's slice of the global batch."""
    waves, lengths, indices = batch
    tokens = parts.tokenizer([parts.pairs.caption(i) for i in indices.tolist()])
    device = parts.device
    with compute.autocast(device):
        out = parts.forward(
            batching.to_device_float(waves, device),
            lengths.to(device),
            tokens["input_ids"].to(device),
            tokens["attention_mask"].to(device),
        )
        loss = parts.loss(out.audio, out.text, out.logit_scale)
    parts.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parts.optimizer.step()
    # Detached tensors, not floats: no host sync per step; train_steps reads them when it logs.
    return {"loss": loss.detach(), "logit_scale": out.logit_scale.detach(), "batch_size": len(indices)}


def local_batch_size(global_batch: int, ranks: Ranks) -> int:
    if global_batch % ranks.world:
        raise ParamsError(f"pretrain.batch_size={global_batch} must be divisible by the process count {ranks.world}")
    return global_batch // ranks.world


@dataclass(frozen=True)
class ContrastiveRun:
    """The numbers one contrastive training run needs: pre-training's stages and the retrieval
    fine-tune (paper Table 2) both reduce to this."""

    batch_size: int  # the global batch, over all processes
    lr: float
    weight_decay: float
    max_seconds: float
    steps: int
    warmup_steps: int
    val_every: int
    eval_batch_size: int
    log_every: int
    checkpoint_every: int
    seed: int

    @classmethod
    def for_stage(cls, params: PretrainParams, stage: str) -> ContrastiveRun:
        s = params.schedule(stage)
        shared = (params.batch_size, params.lr, params.weight_decay, params.max_seconds)
        return cls(*shared, s.steps, s.warmup_steps, s.val_every, params.eval_batch_size, params.log_every,
                   params.checkpoint_every, params.seed)  # fmt: skip


def pretrain(
    model: BiEncoder,
    tokenizer,
    pairs: Pairs,
    val: RetrievalSet,
    params: PretrainParams,
    stage: str,
    device: torch.device,
    ranks: Ranks,
    checkpointer: checkpointing.Checkpointer,
    curves: Path | None,
    workers: int = 0,
    stop_after: int | None = None,
) -> tuple[dict | None, dict]:
    """Pre-training stage `stage` (stage1, stage2, realonly): `contrastive_training` with its settings."""
    run = ContrastiveRun.for_stage(params, stage)
    return contrastive_training(model, tokenizer, pairs, val, run, device, ranks, checkpointer, curves, workers,
                                stop_after)  # fmt: skip


def contrastive_training(
    model: BiEncoder,
    tokenizer,
    pairs: Pairs,
    val: RetrievalSet,
    run: ContrastiveRun,
    device: torch.device,
    ranks: Ranks,
    checkpointer: checkpointing.Checkpointer,
    curves: Path | None = None,
    workers: int = 0,
    stop_after: int | None = None,
) -> tuple[dict | None, dict]:
    """Train; returns (best state dict on CPU, {"history": [...], "best": {...}}); (None, ...) when stopped early."""
    local = local_batch_size(run.batch_size, ranks)
    if len(pairs) < run.batch_size:
        raise ParamsError(f"pretrain.batch_size={run.batch_size} exceeds the {len(pairs)} training pairs")
    sample_rate = next(iter(pairs.sample_rates))
    dataset = PairClips(pairs, max_samples=int(run.max_seconds * sample_rate))

    def plan(step: int) -> np.ndarray:  # this rank's slice of global batch `step`
        return sampling.epoch_batches(run.seed, step, len(pairs), run.batch_size)[
            ranks.rank * local : (ranks.rank + 1) * local
        ]

    def batches(start: int):
        sampler = _RankSampler(plan, run.seed, start, run.steps, ranks.rank * local)
        return batching.loader(dataset, sampler, workers, device)

    forward = model
    if ranks.world > 1:
        device_ids = [device] if device.type == "cuda" else None
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if compute.compile_enabled(device):
        # Compile the audio tower's forward in place: the state dict keeps its key names.
        model.audio_encoder.forward_embedding = torch.compile(model.audio_encoder.forward_embedding)
    optimizer = loop.adam(model.parameters(), run.lr, run.weight_decay, device)
    parts = StepParts(forward, ContrastiveLoss(), optimizer, tokenizer, pairs, device)
    state: dict = {"history": [], "best": {"geometric_mean": -1.0, "step": 0}, "best_state": None}

    def evaluate(done: int) -> dict[str, float]:
        metrics = score_retrieval(model, tokenizer, val, run.eval_batch_size, device, workers)
        flat = {f"val/{d}/{k}": v for d in ("audio_to_text", "text_to_audio") for k, v in metrics[d].items()}
        flat["val/geometric_mean"] = metrics["geometric_mean"]
        state["history"].append({"step": done, **metrics})
        log.info("step %d validation: A->T R@1 %.3f R@10 %.3f, T->A R@1 %.3f R@10 %.3f, geometric mean %.4f", done,
                 metrics["audio_to_text"]["R@1"], metrics["audio_to_text"]["R@10"], metrics["text_to_audio"]["R@1"],
                 metrics["text_to_audio"]["R@10"], metrics["geometric_mean"])  # fmt: skip
        if metrics["geometric_mean"] > state["best"]["geometric_mean"]:
            state["best"] = {"step": done, **metrics}
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return {k: v for k, v in flat.items() if "median" not in k}

    schedule = loop.LoopSchedule(
        run.steps,
        lambda step: schedules.warmup_cosine(step, run.steps, run.warmup_steps),
        run.log_every,
        run.checkpoint_every,
        evaluate_every=run.val_every,
    )
    step_fn = functools.partial(contrastive_step, parts)
    reached = loop.train_steps(model, optimizer, batches, step_fn, schedule, checkpointer, curves, evaluate=evaluate,
                               extra_state=state, is_main=ranks.is_main, stop_after=stop_after)  # fmt: skip
    summary = {"history": state["history"], "best": state["best"]}
    if reached < run.steps:
        return None, summary
    if ranks.is_main:
        checkpointer.clear()
    return copy.deepcopy(state["best_state"]), summary


VAL_SPLIT = "val"  # AudioCaps val: the held-out split for model selection


@dataclass(frozen=True)
class StageInputs:
    """What one pre-training stage reads (the paths dvc.yaml passes)."""

    val: Path  # prepared AudioCaps: its val split selects the model
    tagger: Path | None = None  # stage1, realonly: the audio tower starts from the tagger
    init: Path | None = None  # stage2: the stage-1 model folder
    audioset: Path | None = None  # stage1: prepared AudioSet ...
    synthetic: Path | None = None  # ... and its synthetic captions
    real: tuple[Path, ...] = ()  # stage2, realonly: prepared captioned datasets

    def missing(self, stage: str) -> list[str]:
        needed = {"stage1": ("tagger", "audioset", "synthetic"), "stage2": ("init", "real"),
                  "realonly": ("tagger", "real")}  # fmt: skip
        return [name for name in needed[stage] if not getattr(self, name)]


def run_stage(
    stage: str,
    params: PretrainParams,
    text: TextEncoderParams | None,
    inputs: StageInputs,
    out: Path,
    curves: Path | None,
    scratch: Path,
    ranks: Ranks,
    workers: int,
    code: list[Path],
    stop_after: int | None = None,
) -> dict | None:
    """Build (stage1, realonly) or load (stage2) the model, train, export on rank 0; returns the metrics
    (None when stopped early, and on other ranks)."""
    device = ranks.start(compute.pick_device())
    compute.seed_everything(params.seed)
    compute.deterministic_cpu()
    if stage == "stage2":
        model, tokenizer, _ = load_blat(inputs.init)
        config = dict(read_sidecar(inputs.init / "blat", kind="biencoder")[0])
        files = [inputs.init / "blat.safetensors"]
    else:
        audio_config = {**read_sidecar(inputs.tagger / "tagger", kind="audio_encoder")[0], "num_classes": 0}
        config = {
            "audio": audio_config,
            "text": text.config(),
            "embed_dim": params.embed_dim,
            "logit_scale_init": params.logit_scale_init,
            "logit_scale_max": params.logit_scale_max,
            "sample_rate": audio_config["sample_rate"],
        }
        model = build_biencoder(config)
        init_audio_from_tagger(model, inputs.tagger)
        tokenizer = Tokenizer(config["text"]["folder"], text.max_tokens)
        files = [inputs.tagger / "tagger.safetensors"]
    if stage == "stage1":
        pairs = synthetic_pairs(inputs.audioset, inputs.synthetic)
        files += [inputs.synthetic]
    else:
        pairs = caption_pairs(list(inputs.real))
        files += [folder / "manifest.parquet" for folder in inputs.real]
    if pairs.sample_rates != {config["sample_rate"]}:
        raise ParamsError(
            f"the audio tower expects {config['sample_rate']} Hz, the pairs are at {pairs.sample_rates} Hz"
        )
    val = RetrievalSet.from_split(inputs.val, VAL_SPLIT)
    model.to(device)
    fingerprint = checkpointing.fingerprint([stage, params.for_stage(stage), config], files, code)
    best, summary = pretrain(
        model, tokenizer, pairs, val, params, stage, device, ranks,
        checkpointing.Checkpointer(scratch, fingerprint), curves, workers, stop_after,
    )  # fmt: skip
    if best is None or not ranks.is_main:
        return None
    meta = {"stage": stage, "best": summary["best"], "params": params.for_stage(stage)}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        save_blat(tmp, model, best, config, tokenizer, meta)
    return {
        "pretrain": {
            stage: {
                "train_pairs": len(pairs),
                "best": _rounded(summary["best"]),
                "final": _rounded(summary["history"][-1]),
            }
        }
    }


def _rounded(entry: dict) -> dict:
    """A validation record with 6 decimals (metrics files diff cleanly)."""
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 6) for k, v in entry.items()}


class _RankSampler(sampling.StepBatchSampler):
    """StepBatchSampler whose crop seeds use the item's position in the *global* batch."""

    def __init__(self, plan, seed: int, start: int, total: int, offset: int):
        super().__init__(plan, seed, start, total)
        self.offset = offset

    def __iter__(self):
        for step in range(self.start, self.total):
            yield [(int(i), (self.seed, step, self.offset + k)) for k, i in enumerate(self.plan(step))]
