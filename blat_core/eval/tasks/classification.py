"""Classification tasks (paper Table 5): zero-shot by label text (`evaluate@zeroshot`), a linear probe
on frozen clip embeddings (`evaluate@linear_probe`) and the fine-tuned tower (`evaluate@finetune`),
BLAT vs the tagger's tower (our PANNs); probe and fine-tune report mean ± std over seeds."""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from blat_core import compute
from blat_core.data.batching import check_sample_rate, full_clips
from blat_core.data.labelled import LabelledClips, labelled_clips
from blat_core.data.prepared import PreparedDataset
from blat_core.eval import classification
from blat_core.eval.receipts import SCORED, allowed_ids, check_listed
from blat_core.eval.tasks.common import mean_std
from blat_core.models.blat_model import load_blat
from blat_core.models.embed import embed_captions, embed_clips
from blat_core.models.towers import audio_tower, model_folder, scratch_name
from blat_core.params import bounded
from blat_core.train import checkpointing
from blat_core.train.finetune import score_classifier, train_classifier

CODE = [Path(__file__).resolve()]  # resume fingerprints follow this task's imports
log = logging.getLogger(__name__)


def tested_ids(data: LabelledClips, sets: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """The clips some evaluation set of `sets` scores (tests on)."""
    tested = np.zeros(len(data.audio_ids), dtype=bool)
    for _, test in sets:
        tested |= test
    return [a for a, keep in zip(data.audio_ids, tested, strict=True) if keep]


def restrict(data: LabelledClips, id_lists: dict[str, str], task: str) -> LabelledClips:
    """`data` with its test clips limited to `id_lists[data.name]` (no list: unchanged). A clip some fold tests on
    that the list leaves out is dropped whole (not trained on in the other folds either); clips no evaluation set
    tests on (AudioSet's training split) stay."""
    allowed = allowed_ids(id_lists, task, data.name)
    if allowed is None:
        return data
    tested = set(tested_ids(data, data.evaluation_sets()))
    check_listed(allowed, sorted(tested), task, data.name, f"{data.name}'s test folds/split")
    return data.subset(np.array([a not in tested or a in allowed for a in data.audio_ids], dtype=bool))


@dataclass
class ZeroShotTask:
    """The `evaluate.tasks.zeroshot` section."""

    models: list[str]
    datasets: list[str]
    prompt: str = "{}"  # template around the label text, e.g. "the sound of {}"
    batch_size: int = bounded(ge=1, default=64)
    id_lists: dict[str, str] = field(default_factory=dict)  # dataset -> a file of the test ids to score


def zeroshot(task: ZeroShotTask, models_root: Path, prepared_root: Path, device, scratch: Path | None) -> dict:
    out = {}
    for model_name in task.models:
        model, tokenizer, _ = load_blat(model_folder(models_root, model_name), device)
        for dataset in task.datasets:
            data = restrict(labelled_clips(PreparedDataset(prepared_root / dataset), used=False),
                            task.id_lists, "zeroshot")  # fmt: skip
            audio = embed_clips(model, PreparedDataset(prepared_root / dataset), data.audio_ids, task.batch_size,
                                device)  # fmt: skip
            texts = [classification.label_text(c, task.prompt) for c in data.classes]
            text = embed_captions(model, tokenizer, texts, task.batch_size, device)
            metrics = classification.zero_shot(data, audio.numpy(), text.numpy())
            if not data.multi_label:
                metrics["chance_accuracy"] = classification.chance(data)
            out.setdefault(dataset, {})[model_name] = metrics | {SCORED: tested_ids(data, data.evaluation_sets())}
            log.info("zero-shot %s %s: %s", model_name, dataset, metrics)
    return out


@dataclass
class LinearProbeTask:
    """The `evaluate.tasks.linear_probe` section."""

    models: list[str]  # BLAT model folders and/or "tagger"
    datasets: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = bounded(ge=1, default=200)
    lr: float = bounded(gt=0.0, default=1.0e-2)
    weight_decay: float = bounded(ge=0.0, default=0.0)
    batch_size: int = bounded(ge=1, default=64)
    id_lists: dict[str, str] = field(default_factory=dict)  # dataset -> a file of the test ids to score


def clip_embeddings(model_name: str, models_root: Path, prepared: PreparedDataset, ids: list[str], batch_size: int,
                    device) -> np.ndarray:  # fmt: skip
    """Frozen clip embeddings before any projection: the BLAT audio tower's, or the tagger's."""
    tower = audio_tower(model_name, models_root).to(device).eval()
    check_sample_rate(getattr(tower, "sample_rate", None), prepared, f"model {model_name!r}")
    out = np.zeros((len(ids), tower.embedding_dim), dtype=np.float32)
    with torch.no_grad():
        for wave, lengths, indices in full_clips(prepared, ids, batch_size, device):
            with compute.autocast(device):
                out[indices.numpy()] = tower.forward_embedding(wave, lengths).float().cpu()
    return out


def linear_probe(task: LinearProbeTask, models_root: Path, prepared_root: Path, device, scratch: Path | None) -> dict:
    out = {}
    for dataset in task.datasets:
        prepared = PreparedDataset(prepared_root / dataset)
        data = restrict(labelled_clips(prepared, used=True), task.id_lists, "linear_probe")
        for model_name in task.models:
            embeddings = clip_embeddings(model_name, models_root, prepared, data.audio_ids, task.batch_size, device)
            runs = [
                classification.linear_probe(data, embeddings, seed, task.epochs, task.lr, task.weight_decay)
                for seed in task.seeds
            ]
            metrics = mean_std([{k: v for k, v in run.items() if k != "sets"} for run in runs])
            out.setdefault(dataset, {})[model_name] = metrics | {SCORED: tested_ids(data, data.evaluation_sets())}
            log.info("linear probe %s %s: %s", model_name, dataset,
                     {k: round(v["mean"], 4) for k, v in metrics.items()})  # fmt: skip
    return out


@dataclass
class FineTuneTask:
    """The `evaluate.tasks.finetune` section."""

    models: list[str]  # BLAT model folders and/or "tagger"
    datasets: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = bounded(ge=1, default=100)
    batch_size: int = bounded(ge=1, default=32)
    lr: float = bounded(gt=0.0, default=1.0e-4)
    max_seconds: float = bounded(gt=0.0, default=10.0)
    max_sets: int = bounded(ge=0, default=0)  # evaluate the first N folds/splits only (0: all, as the paper)
    checkpoint_every: int = bounded(ge=1, default=100)
    head_lr_scale: float = bounded(gt=0.0, default=10.0)  # the new head's LR over the tower's (paper: silent)
    id_lists: dict[str, str] = field(default_factory=dict)  # dataset -> a file of the test ids to score


def finetune(task: FineTuneTask, models_root: Path, prepared_root: Path, device, scratch: Path | None) -> dict:
    if scratch is None:
        raise ValueError("the finetune task needs a scratch folder for its resume checkpoints (--scratch)")
    out = {}
    for dataset in task.datasets:
        prepared = PreparedDataset(prepared_root / dataset)
        data = restrict(labelled_clips(prepared, used=True), task.id_lists, "finetune")
        sets = data.evaluation_sets()
        sets = sets[: task.max_sets] if task.max_sets else sets
        max_samples = int(task.max_seconds * prepared.sample_rate)
        for model_name in task.models:
            make_tower = functools.partial(audio_tower, model_name, models_root)
            folder = model_folder(models_root, model_name)
            inputs = [prepared.folder / "manifest.parquet", *sorted(f for f in folder.rglob("*") if f.is_file())]
            if dataset in task.id_lists:
                inputs.append(Path(task.id_lists[dataset]))  # the training set follows the list
            runs, records = [], []
            for seed in task.seeds:
                per_set = []
                for index, (train, test) in enumerate(sets):
                    key = [dataclasses.asdict(task), dataset, model_name, seed, index]
                    checkpointer = checkpointing.Checkpointer(
                        scratch / f"{scratch_name(dataset, model_name)}_seed{seed}_set{index}",
                        checkpointing.fingerprint(key, inputs, CODE),
                    )
                    schedule = (seed, task.steps, task.batch_size, task.lr, max_samples)
                    losses: list = []
                    model = train_classifier(make_tower, data, prepared, train, *schedule, device, checkpointer,
                                             task.checkpoint_every, task.head_lr_scale, history=losses)  # fmt: skip
                    per_set.append(score_classifier(model, data, prepared, test, task.batch_size, device))
                    records.append({"seed": seed, "set": index, "steps": task.steps, "kept_step": task.steps,
                                    "train_loss": [[step, round(v["loss"], 6)] for step, v in losses]})  # fmt: skip
                runs.append({k: float(np.mean([s[k] for s in per_set])) for k in per_set[0]})
            out.setdefault(dataset, {})[model_name] = mean_std(runs) | {"sets": len(sets), "runs": records,
                                                                        SCORED: tested_ids(data, sets)}  # fmt: skip
            log.info("fine-tune %s %s: %s", model_name, dataset,
                     {k: round(out[dataset][model_name][k]["mean"], 4) for k in runs[0]})  # fmt: skip
    return out
