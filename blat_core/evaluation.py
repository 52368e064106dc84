"""The evaluation tasks behind `evaluate@<task>` (paper Tables 2 and 5): each task has its own params
dataclass (the `evaluate.tasks.<task>` section) and returns namespaced metrics.

    retrieval     zero-shot text<->audio retrieval on AudioCaps test and Clotho evaluation (Table 2)
    zeroshot      zero-shot classification on ESC-50, US8K, VGGSound, FSD50K, AudioSet (Table 5 top)
    linear_probe  one linear layer on frozen clip embeddings, BLAT vs the tagger tower (Table 5 bottom)
    finetune      the whole audio tower + one linear layer, BLAT vs the tagger tower (Table 5 bottom)
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from blat_core import classification
from blat_core.blat_model import load_blat
from blat_core.embed import embed_captions, embed_clips
from blat_core.pairs import RetrievalSet
from blat_core.params import bounded
from blat_core.prepared import PreparedDataset
from blat_core.retrieval import retrieval_metrics

log = logging.getLogger(__name__)
TAGGER = "tagger"  # the model name that means "the tagger's audio tower" (our PANNs) in linear_probe


@dataclass
class RetrievalTask:
    models: list[str]  # model folders under the models root (blat_stage2, blat_realonly, ...)
    datasets: dict[str, str]  # prepared dataset -> its test split
    batch_size: int = bounded(ge=1, default=64)


@dataclass
class ZeroShotTask:
    models: list[str]
    datasets: list[str]
    prompt: str = "{}"  # template around the label text, e.g. "the sound of {}"
    batch_size: int = bounded(ge=1, default=64)


@dataclass
class LinearProbeTask:
    models: list[str]  # BLAT model folders and/or "tagger"
    datasets: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = bounded(ge=1, default=200)
    lr: float = bounded(gt=0.0, default=1.0e-2)
    weight_decay: float = bounded(ge=0.0, default=0.0)
    batch_size: int = bounded(ge=1, default=64)


def retrieval(task: RetrievalTask, models_root: Path, prepared_root: Path, device) -> dict:
    out = {}
    for model_name in task.models:
        model, tokenizer, _ = load_blat(models_root / model_name, device)
        for dataset, split in task.datasets.items():
            test = RetrievalSet.from_split(prepared_root / dataset, split)
            audio = embed_clips(model, test.prepared, test.audio_ids, task.batch_size, device)
            text = embed_captions(model, tokenizer, test.captions, task.batch_size, device)
            metrics = retrieval_metrics(audio @ text.t(), test.caption_audio)
            out.setdefault(dataset, {})[model_name] = metrics | {"clips": len(test.audio_ids)}
            log.info("%s %s: A->T R@1 %.3f, T->A R@1 %.3f", model_name, dataset,
                     metrics["audio_to_text"]["R@1"], metrics["text_to_audio"]["R@1"])  # fmt: skip
    return out


def zeroshot(task: ZeroShotTask, models_root: Path, prepared_root: Path, device) -> dict:
    out = {}
    for model_name in task.models:
        model, tokenizer, _ = load_blat(models_root / model_name, device)
        for dataset in task.datasets:
            data = classification.labelled_clips(PreparedDataset(prepared_root / dataset)).used(train=False)
            audio = embed_clips(model, PreparedDataset(prepared_root / dataset), data.audio_ids, task.batch_size,
                                device)  # fmt: skip
            texts = [classification.label_text(c, task.prompt) for c in data.classes]
            text = embed_captions(model, tokenizer, texts, task.batch_size, device)
            metrics = classification.zero_shot(data, audio.numpy(), text.numpy())
            if not data.multi_label:
                metrics["chance_accuracy"] = classification.chance(data)
            out.setdefault(dataset, {})[model_name] = metrics
            log.info("zero-shot %s %s: %s", model_name, dataset, metrics)
    return out


def clip_embeddings(model_name: str, models_root: Path, prepared: PreparedDataset, ids: list[str], batch_size: int,
                    device) -> np.ndarray:  # fmt: skip
    """Frozen clip embeddings before any projection: the BLAT audio tower's, or the tagger's."""
    if model_name == TAGGER:
        from blat_core.audio.encoder import load_audio_encoder
        from blat_core.batching import ClipDataset, eval_batches, loader, to_device_float

        tower, _ = load_audio_encoder(models_root / TAGGER)
        tower.to(device).eval()
        out = np.zeros((len(ids), tower.embedding_dim), dtype=np.float32)
        with torch.no_grad():
            for waves, lengths, indices in loader(ClipDataset(prepared, ids, None), eval_batches(len(ids), batch_size),
                                                  0, device):  # fmt: skip
                out[indices.numpy()] = tower.forward_embedding(to_device_float(waves, device), lengths.to(device)).cpu()
        return out
    model, _, _ = load_blat(models_root / model_name, device)
    return embed_clips(model, prepared, ids, batch_size, device, projected=False).numpy()


def linear_probe(task: LinearProbeTask, models_root: Path, prepared_root: Path, device) -> dict:
    out = {}
    for dataset in task.datasets:
        prepared = PreparedDataset(prepared_root / dataset)
        data = classification.labelled_clips(prepared).used(train=True)
        for model_name in task.models:
            embeddings = clip_embeddings(model_name, models_root, prepared, data.audio_ids, task.batch_size, device)
            runs = [
                classification.linear_probe(data, embeddings, seed, task.epochs, task.lr, task.weight_decay)
                for seed in task.seeds
            ]
            metrics = {}
            for key in runs[0]:
                if key == "sets":
                    continue
                values = [r[key] for r in runs]
                metrics[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": values}
            out.setdefault(dataset, {})[model_name] = metrics
            log.info("linear probe %s %s: %s", model_name, dataset,
                     {k: round(v["mean"], 4) for k, v in metrics.items()})  # fmt: skip
    return out


@dataclass
class FineTuneTask:
    models: list[str]  # BLAT model folders and/or "tagger"
    datasets: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = bounded(ge=1, default=100)
    batch_size: int = bounded(ge=1, default=32)
    lr: float = bounded(gt=0.0, default=1.0e-4)
    max_seconds: float = bounded(gt=0.0, default=10.0)
    max_sets: int = bounded(ge=0, default=0)  # evaluate the first N folds/splits only (0: all, as the paper)


def finetune(task: FineTuneTask, models_root: Path, prepared_root: Path, device) -> dict:
    from blat_core.finetune import finetune_classifier

    out = {}
    for dataset in task.datasets:
        prepared = PreparedDataset(prepared_root / dataset)
        data = classification.labelled_clips(prepared).used(train=True)
        sets = data.evaluation_sets()
        sets = sets[: task.max_sets] if task.max_sets else sets
        max_samples = int(task.max_seconds * prepared.sample_rate)
        for model_name in task.models:
            make_tower = functools.partial(_tower, model_name, models_root)
            runs = []
            for seed in task.seeds:
                per_set = [
                    finetune_classifier(
                        make_tower,
                        data,
                        prepared,
                        train,
                        test,
                        seed,
                        task.steps,
                        task.batch_size,
                        task.lr,
                        max_samples,
                        device,
                    )  # fmt: skip
                    for train, test in sets
                ]
                runs.append({k: float(np.mean([s[k] for s in per_set])) for k in per_set[0]})
            out.setdefault(dataset, {})[model_name] = _mean_std(runs) | {"sets": len(sets)}
            log.info("fine-tune %s %s: %s", model_name, dataset,
                     {k: round(v["mean"], 4) for k, v in out[dataset][model_name].items() if k != "sets"})  # fmt: skip
    return out


def _tower(model_name: str, models_root: Path) -> torch.nn.Module:
    """A fresh copy of a model's CNN14 tower (BLAT's audio encoder, or the tagger's)."""
    if model_name == TAGGER:
        from blat_core.audio.encoder import load_audio_encoder

        return load_audio_encoder(models_root / TAGGER)[0]
    return load_blat(models_root / model_name)[0].audio_encoder


def _mean_std(runs: list[dict[str, float]]) -> dict:
    return {
        key: {"mean": float(np.mean([r[key] for r in runs])), "std": float(np.std([r[key] for r in runs])),
              "seeds": [r[key] for r in runs]}
        for key in runs[0]
    }  # fmt: skip


TASKS = {
    "retrieval": RetrievalTask,
    "zeroshot": ZeroShotTask,
    "linear_probe": LinearProbeTask,
    "finetune": FineTuneTask,
}
RUNNERS = {"retrieval": retrieval, "zeroshot": zeroshot, "linear_probe": linear_probe, "finetune": finetune}


def run_task(name: str, task, models_root: Path, prepared_root: Path, device) -> dict:
    return {name: RUNNERS[name](task, Path(models_root), Path(prepared_root), device)}
