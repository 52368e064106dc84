"""The evaluation tasks behind `evaluate@<task>` (paper Tables 2 and 5): each task has its own params
dataclass (the `evaluate.tasks.<task>` section) and returns namespaced metrics.

    retrieval     zero-shot text<->audio retrieval on AudioCaps test and Clotho evaluation (Table 2)
    zeroshot      zero-shot classification on ESC-50, US8K, VGGSound, FSD50K, AudioSet (Table 5 top)
    linear_probe  one linear layer on frozen clip embeddings, BLAT vs the tagger tower (Table 5 bottom)
    finetune      the whole audio tower + one linear layer, BLAT vs the tagger tower (Table 5 bottom)
    retrieval_finetune  contrastive fine-tuning on each target, from BLAT vs from scratch (Table 2)
    captioning    the captioner without tags on frozen BLAT vs tagger frame features (Table 4;
                  blat_core.eval.captioning)
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from blat_core.data.pairs import RetrievalSet
from blat_core.data.prepared import PreparedDataset
from blat_core.eval import classification
from blat_core.eval.captioning import CaptioningTask, captioning
from blat_core.eval.retrieval import retrieval_metrics
from blat_core.models.blat_model import load_blat
from blat_core.models.embed import embed_captions, embed_clips
from blat_core.models.towers import TAGGER, audio_tower, model_folder
from blat_core.params import ParamsError, bounded

log = logging.getLogger(__name__)


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
        model, tokenizer, _ = load_blat(model_folder(models_root, model_name), device)
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
        model, tokenizer, _ = load_blat(model_folder(models_root, model_name), device)
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
    from blat_core import compute
    from blat_core.data.batching import full_clips

    tower = audio_tower(model_name, models_root).to(device).eval()
    out = np.zeros((len(ids), tower.embedding_dim), dtype=np.float32)
    with torch.no_grad():
        for wave, lengths, indices in full_clips(prepared, ids, batch_size, device):
            with compute.autocast(device):
                out[indices.numpy()] = tower.forward_embedding(wave, lengths).float().cpu()
    return out


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
            metrics = _mean_std([{k: v for k, v in run.items() if k != "sets"} for run in runs])
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
    from blat_core.train.finetune import finetune_classifier

    out = {}
    for dataset in task.datasets:
        prepared = PreparedDataset(prepared_root / dataset)
        data = classification.labelled_clips(prepared).used(train=True)
        sets = data.evaluation_sets()
        sets = sets[: task.max_sets] if task.max_sets else sets
        max_samples = int(task.max_seconds * prepared.sample_rate)
        for model_name in task.models:
            make_tower = functools.partial(audio_tower, model_name, models_root)
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


def _mean_std(runs: list[dict[str, float]]) -> dict:
    return {
        key: {"mean": float(np.mean([r[key] for r in runs])), "std": float(np.std([r[key] for r in runs])),
              "seeds": [r[key] for r in runs]}
        for key in runs[0]
    }  # fmt: skip


@dataclass
class RetrievalFineTuneTask:
    """Table 2's fine-tuned and from-scratch rows: contrastive training on one target's training captions,
    model selection on its validation split (the starting weights included), retrieval on its test split."""

    models: list[str]  # pre-trained starting points (BLAT model folders); "scratch" = tagger + text folder
    targets: dict[str, dict[str, str]]  # dataset -> {"val": split, "test": split}
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = bounded(ge=1, default=100)
    warmup_steps: int = bounded(ge=0, default=10)
    val_every: int = bounded(ge=1, default=50)
    batch_size: int = bounded(ge=1, default=32)
    lr: float = bounded(gt=0.0, default=1.0e-4)
    max_seconds: float = bounded(gt=0.0, default=10.0)
    scratch_text_folder: str = ""  # the text tower "scratch" starts from ("": the default MiniLM folder)


SCRATCH = "scratch"


def retrieval_finetune(task: RetrievalFineTuneTask, models_root: Path, prepared_root: Path, device) -> dict:
    import tempfile

    from blat_core import compute
    from blat_core.data.pairs import caption_pairs
    from blat_core.train import checkpointing
    from blat_core.train.distributed import Ranks
    from blat_core.train.pretrain import PretrainParams, StageSchedule, pretrain, validate

    out = {}
    for dataset, splits in task.targets.items():
        pairs = caption_pairs([prepared_root / dataset])
        val = RetrievalSet.from_split(prepared_root / dataset, splits["val"])
        test = RetrievalSet.from_split(prepared_root / dataset, splits["test"])
        for model_name in task.models:
            runs = []
            for seed in task.seeds:
                compute.seed_everything(seed)
                model, tokenizer = _retrieval_start(model_name, task, models_root)
                params = PretrainParams(
                    batch_size=task.batch_size, lr=task.lr, weight_decay=0.0, max_seconds=task.max_seconds,
                    embed_dim=model.embed_dim, log_every=max(1, task.steps // 4), checkpoint_every=task.steps,
                    seed=seed, stage2=StageSchedule(task.steps, task.warmup_steps, task.val_every),
                )  # fmt: skip
                # The starting weights compete in model selection too: fine-tuning keeps them when no
                # validated step beats them (a few demo steps can otherwise only make a good start worse).
                model.to(device)
                start_score = validate(model, tokenizer, val, task.batch_size, device)["geometric_mean"]
                start = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                with tempfile.TemporaryDirectory(prefix="retrieval-finetune-") as scratch:
                    checkpointer = checkpointing.Checkpointer(Path(scratch), f"{dataset}-{model_name}-{seed}")
                    best, summary = pretrain(model, tokenizer, pairs, val, params, "stage2", device, Ranks(),
                                             checkpointer, None)  # fmt: skip
                model.load_state_dict(best if summary["best"]["geometric_mean"] > start_score else start)
                audio = embed_clips(model, test.prepared, test.audio_ids, task.batch_size, device)
                text = embed_captions(model, tokenizer, test.captions, task.batch_size, device)
                metrics = retrieval_metrics(audio @ text.t(), test.caption_audio)
                runs.append({f"{d}/{k}": v for d in ("audio_to_text", "text_to_audio") for k, v in metrics[d].items()})
            summary = _mean_std(runs)
            out.setdefault(dataset, {})[model_name] = {
                d: {k: summary[f"{d}/{k}"] for k in ("R@1", "R@5", "R@10", "median_rank")}
                for d in ("audio_to_text", "text_to_audio")
            }
            log.info("fine-tuned retrieval %s from %s: A->T R@1 %.3f, T->A R@1 %.3f", dataset, model_name,
                     summary["audio_to_text/R@1"]["mean"], summary["text_to_audio/R@1"]["mean"])  # fmt: skip
    return out


def _retrieval_start(model_name: str, task: RetrievalFineTuneTask, models_root: Path):
    """(bi-encoder, tokenizer) to fine-tune: a BLAT model, or `scratch` (tagger audio tower, text tower
    from `scratch_text_folder`, fresh projections) shaped like the first BLAT model of the list."""
    if model_name != SCRATCH:
        model, tokenizer, _ = load_blat(model_folder(models_root, model_name))
        return model.train(), tokenizer
    from blat_core.models.blat_model import build_biencoder, init_audio_from_tagger
    from blat_core.models.checkpoints import read_sidecar
    from blat_core.models.text.encoder import Tokenizer, resolve_folder

    reference = next((m for m in task.models if m != SCRATCH), None)
    if reference is None:
        raise ValueError("evaluate.tasks.retrieval_finetune.models needs a BLAT model beside 'scratch' (its shape)")
    config = read_sidecar(model_folder(models_root, reference) / "blat", kind="biencoder")[0]
    text_folder = str(resolve_folder(task.scratch_text_folder))
    config = {**config, "text": {**config["text"], "folder": text_folder, "pretrained": True}}
    model = build_biencoder(config)
    init_audio_from_tagger(model, models_root / TAGGER)
    return model.train(), Tokenizer(text_folder, config["text"]["max_tokens"])


TASKS = {
    "retrieval": RetrievalTask,
    "zeroshot": ZeroShotTask,
    "linear_probe": LinearProbeTask,
    "finetune": FineTuneTask,
    "retrieval_finetune": RetrievalFineTuneTask,
    "captioning": CaptioningTask,
}
RUNNERS = {
    "retrieval": retrieval,
    "zeroshot": zeroshot,
    "linear_probe": linear_probe,
    "finetune": finetune,
    "retrieval_finetune": retrieval_finetune,
    "captioning": captioning,
}
RESUMABLE = {"captioning"}  # tasks that train long enough to checkpoint into a scratch folder


# What each task can score: retrieval and captioning need captioned test sets, the rest labelled ones.
CAPTIONED = ("audiocaps", "clotho")
LABELLED = ("esc50", "us8k", "vggsound", "fsd50k", "audioset")
TASK_DATASETS = {"retrieval": ("datasets", CAPTIONED), "zeroshot": ("datasets", LABELLED),
                 "linear_probe": ("datasets", LABELLED), "finetune": ("datasets", LABELLED),
                 "retrieval_finetune": ("targets", CAPTIONED), "captioning": ("datasets", CAPTIONED)}  # fmt: skip
SPECIAL_MODELS = {  # model names that are not folders: the tagger's tower, or a from-scratch start
    "linear_probe": {TAGGER}, "finetune": {TAGGER}, "captioning": {TAGGER}, "retrieval_finetune": {SCRATCH},
}  # fmt: skip


def check_task(name: str, task, models_root: Path, prepared_root: Path) -> None:
    """At stage entry, before any model is loaded: every dataset is one the task can score and is prepared,
    every model exists. A `ParamsError` names the params key and the valid names."""
    key, valid = TASK_DATASETS[name]
    datasets = getattr(task, key)  # a list, or a mapping keyed by dataset
    for i, dataset in enumerate(datasets):
        where = f"evaluate.tasks.{name}.{key}" + (f"[{i}]" if isinstance(datasets, list) else f".{dataset}")
        if dataset not in valid:
            raise ParamsError(f"{where}: {dataset!r} is not a dataset this task scores; valid: {', '.join(valid)}")
        if not (Path(prepared_root) / dataset / "manifest.parquet").is_file():
            raise ParamsError(f"{where}: {dataset!r} is not prepared under {prepared_root} "
                              f"(run `dvc repro prepare@{dataset}`, or remove it from the list)")  # fmt: skip
    special = SPECIAL_MODELS.get(name, set())
    for i, model_name in enumerate(task.models):
        folder = model_folder(models_root, model_name)
        if model_name not in special and not (folder / "blat.json").is_file():
            found = sorted(p.parent.name for p in Path(models_root).glob("*/blat.json")) + sorted(special)
            raise ParamsError(f"evaluate.tasks.{name}.models[{i}]: no BLAT model {model_name!r} ({folder}/blat.json "
                              f"is missing); valid: {', '.join(found) or 'none yet'}, or a model folder")  # fmt: skip


def run_task(name: str, task, models_root: Path, prepared_root: Path, device, scratch: Path | None = None) -> dict:
    """{task name: its metrics}; `scratch` is the resume folder of the tasks in RESUMABLE."""
    extra = {"scratch": Path(scratch) / name if scratch else None} if name in RESUMABLE else {}
    return {name: RUNNERS[name](task, Path(models_root), Path(prepared_root), device, **extra)}
