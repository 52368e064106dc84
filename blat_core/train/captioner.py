"""Captioner training (SPEC §2): Adam with linear warmup then exponential decay, label smoothing,
scheduled sampling, gradient clipping, per-epoch validation CIDEr, and averaging of the last epochs."""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blat_core import compute
from blat_core.atomic import atomic_path
from blat_core.data.features import FrameFeatures
from blat_core.data.prepared import PreparedDataset, multi_hot, read_classes
from blat_core.eval.metrics.captions import caption_scores, cider
from blat_core.models.captioner.inference import caption_batch, pad_frames
from blat_core.models.captioner.io import save_captioner
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary
from blat_core.params import bounded
from blat_core.train import checkpointing, loop, sampling, schedules

log = logging.getLogger(__name__)


@dataclass
class CaptionerParams:
    """The `captioner` section of params.yaml."""

    epochs: int = bounded(ge=1)
    batch_size: int = bounded(ge=1)
    lr: float = bounded(gt=0.0)
    weight_decay: float = bounded(ge=0.0)
    warmup_steps: int = bounded(ge=0)
    final_lr: float = bounded(gt=0.0)
    label_smoothing: float = bounded(ge=0.0, le=1.0)
    teacher_forcing_start: float = bounded(ge=0.0, le=1.0)
    teacher_forcing_end: float = bounded(ge=0.0, le=1.0)
    grad_clip: float = bounded(gt=0.0)
    average_last: int = bounded(ge=1)
    beam: int = bounded(ge=1)
    max_tokens: int = bounded(ge=1)
    seed: int = 0
    corenlp_dir: str = ""
    fense_sbert_dir: str = ""
    fense_echecker: str = ""
    fense_echecker_encoder_dir: str = ""

    def local_models(self):
        from blat_core.eval.metrics.captions import LocalModels

        return LocalModels(self.corenlp_dir, self.fense_sbert_dir, self.fense_echecker, self.fense_echecker_encoder_dir)


@dataclass
class CaptionData:
    """Clips for one split: frame features (float32 arrays), tag multi-hots and captions."""

    ids: list[str]
    frames: list[np.ndarray]
    tags: np.ndarray
    captions: list[list[str]]

    def batch(self, indices, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames, lengths = pad_frames([self.frames[i] for i in indices])
        return frames.to(device), lengths, torch.from_numpy(self.tags[list(indices)]).to(device)


def token_batch(vocab: Vocabulary, captions: list[str], device) -> torch.Tensor:
    encoded = [vocab.encode(c) for c in captions]
    tokens = torch.zeros(len(encoded), max(len(e) for e in encoded), dtype=torch.long)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids)
    return tokens.to(device)


def teacher_forcing(epoch: int, p: CaptionerParams) -> float:
    """Scheduled sampling: the share of gold previous words falls linearly over the epochs."""
    return p.teacher_forcing_start + (p.teacher_forcing_end - p.teacher_forcing_start) * epoch / max(1, p.epochs - 1)


def train_captioner(
    model: Captioner,
    vocab: Vocabulary,
    train: CaptionData,
    val: CaptionData,
    p: CaptionerParams,
    device,
    checkpointer: checkpointing.Checkpointer,
    curves_folder: Path | None = None,
    stop_after_epochs: int | None = None,
) -> tuple[dict | None, list[float]]:
    """Train; returns the selected state dict and the validation CIDEr per epoch (+ averaged model last).

    Runs the shared loop with one log window, one validation and one checkpoint per epoch;
    `stop_after_epochs` (a test's stand-in for a killed run) returns (None, history) after that many epochs.
    """
    pairs = [(i, c) for i, caps in enumerate(train.captions) for c in caps]  # one item per training caption
    steps_per_epoch = max(1, len(pairs) // p.batch_size)
    total = p.epochs * steps_per_epoch
    optimizer = loop.adam(model.parameters(), p.lr, p.weight_decay, device)
    state: dict = {"recent": [], "history": [], "best": (float("-inf"), None)}

    def batches(start: int):
        for step in range(start, total):
            batch = sampling.epoch_batches(p.seed, step, len(pairs), p.batch_size)
            frames, lengths, tags = train.batch([pairs[i][0] for i in batch], device)
            yield step, frames, lengths, tags, token_batch(vocab, [pairs[i][1] for i in batch], device)

    def step_fn(batch) -> dict:
        step, frames, lengths, tags, tokens = batch
        ratio = teacher_forcing(step // steps_per_epoch, p)
        loss = caption_step(model, optimizer, vocab, frames, lengths, tags, tokens, ratio, p, device)
        return {"loss": loss, "batch_size": len(tokens)}

    def evaluate(done: int) -> dict[str, float]:
        epoch = done // steps_per_epoch - 1
        score = evaluate_cider(model, vocab, val, p, device)
        state["history"].append(score)
        log.info("epoch %d/%d val CIDEr %.4f", epoch + 1, p.epochs, score)
        snapshot = copy.deepcopy(model.state_dict())
        state["recent"] = (state["recent"] + [snapshot])[-p.average_last :]
        if score > state["best"][0]:
            state["best"] = (score, snapshot)
        return {"val_cider": score}

    schedule = loop.LoopSchedule(
        total,
        lambda step: schedules.warmup_exponential(step, total, p.warmup_steps, p.lr, p.final_lr),
        log_every=steps_per_epoch,
        checkpoint_every=steps_per_epoch,
        evaluate_every=steps_per_epoch,
    )
    stop_after = stop_after_epochs * steps_per_epoch if stop_after_epochs is not None else None
    reached = loop.train_steps(
        model, optimizer, batches, step_fn, schedule, checkpointer, curves_folder, evaluate=evaluate,
        curve_values=lambda done: {"teacher_forcing": teacher_forcing(done // steps_per_epoch - 1, p)},
        extra_state=state, stop_after=stop_after,
    )  # fmt: skip
    if reached < total:
        return None, state["history"]
    # Weight averaging over the last epochs (SPEC §2); kept only if it validates at least as well.
    recent, best, history = state["recent"], state["best"], state["history"]
    averaged = {
        k: sum(s[k].float() for s in recent) / len(recent) if recent[0][k].is_floating_point() else recent[-1][k]
        for k in recent[0]
    }
    model.load_state_dict(averaged)
    averaged_score = evaluate_cider(model, vocab, val, p, device)
    history.append(averaged_score)
    log.info("averaged last %d epochs: val CIDEr %.4f (best single epoch %.4f)", len(recent), averaged_score, best[0])
    checkpointer.clear()
    return (averaged if averaged_score >= best[0] else best[1]), history


def caption_step(model, optimizer, vocab, frames, lengths, tags, tokens, ratio: float, p: CaptionerParams, device):
    """One update of label-smoothed cross-entropy with scheduled sampling; returns the loss (detached)."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]  # (B, L-1) each
    if ratio < 1.0:
        # Scheduled sampling: replace a share of the gold previous words by the model's own guesses.
        with torch.no_grad(), compute.autocast(device):
            predicted = model(frames, lengths, tags, inputs).argmax(-1)
        use_predicted = torch.rand(inputs.shape, device=device) >= ratio
        use_predicted[:, 0] = False  # <start> stays
        inputs = torch.where(use_predicted & (inputs != vocab.pad), torch.roll(predicted, 1, dims=1), inputs)
    with compute.autocast(device):
        logits = model(frames, lengths, tags, inputs)  # (B, L-1, vocab)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1),
            ignore_index=vocab.pad,
            label_smoothing=p.label_smoothing,
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def generate(
    model: Captioner, vocab: Vocabulary, data: CaptionData, p: CaptionerParams, device, batch_size: int = 64
) -> dict[str, str]:
    """Beam-search captions for every clip of `data`."""
    model.eval()
    out = {}
    for start in range(0, len(data.ids), batch_size):
        indices = list(range(start, min(len(data.ids), start + batch_size)))
        captions, _ = caption_batch(model, vocab, *data.batch(indices, device), p.beam, p.max_tokens, device)
        out.update({data.ids[i]: c for i, c in zip(indices, captions, strict=True)})
    return out


def evaluate_cider(model, vocab, data: CaptionData, p: CaptionerParams, device) -> float:
    candidates = generate(model, vocab, data, p, device)
    return cider({i: c for i, c in zip(data.ids, data.captions, strict=True)}, candidates)


# ---------------------------------------------------------------- the captioner@<variant> stage
def load_split(prepared: PreparedDataset, features: FrameFeatures, classes, split: str, training: bool) -> CaptionData:
    """A split's clips: through the leakage gate for training, as they are for validation and testing."""
    rows = list(prepared.training_rows(split)) if training else prepared.evaluation_rows(split)
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
    code: list[Path],
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
    train, val, test = (load_split(prepared, frames, classes, s, s == "train") for s in ("train", "val", "test"))
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
        code,
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
