"""The evaluation tasks behind `evaluate@<task>` (paper Tables 2, 4 and 5), as a registry.

A task is its params dataclass (the `evaluate.tasks.<task>` section), its run function and what its
metrics look like. Every task writes `{task: {dataset: {model: entry}}}` to metrics/evaluate_<task>.json;
the shape lives in `blat_core.eval.schema`, which the report reads through.

    retrieval           zero-shot text<->audio retrieval on AudioCaps test and Clotho evaluation (Table 2)
    retrieval_finetune  contrastive fine-tuning on each target, from BLAT vs from scratch (Table 2)
    captioning          the captioner without tags on frozen BLAT vs tagger frame features (Table 4)
    zeroshot            zero-shot classification on ESC-50, US8K, VGGSound, FSD50K, AudioSet (Table 5 top)
    linear_probe        one linear layer on frozen clip embeddings, BLAT vs the tagger tower (Table 5 bottom)
    finetune            the whole audio tower + one linear layer, BLAT vs the tagger tower (Table 5 bottom)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blat_core.data.datasets import CAPTIONED_TARGETS, LABELLED_TARGETS
from blat_core.eval.schema import datasets_field
from blat_core.eval.tasks import captioning, classification, retrieval
from blat_core.models.towers import TAGGER, model_folder
from blat_core.params import ParamsError


@dataclass(frozen=True)
class Task:
    """One evaluation task: `run(params, models_root, prepared_root, device, scratch)` returns
    {dataset: {model: entry}}, each entry holding `entry_keys` (numbers, or {mean, std, seeds} over seeds)."""

    name: str
    params: type
    run: Callable[..., dict]
    datasets_field: str  # the params field naming the datasets: a list, or a mapping keyed by dataset
    valid_datasets: tuple[str, ...]  # the datasets it can score
    entry_keys: tuple[str, ...]
    special_models: frozenset[str] = frozenset()  # model names that are not folders
    resumable: bool = False  # trains long enough to checkpoint into a scratch folder
    over_seeds: bool = False  # entries are {mean, std, seeds}
    uses_features: bool = False  # reads the `features@<dataset>` frames instead of extracting them again


_RECALLS = ("audio_to_text", "text_to_audio")
_TASKS = (
    Task("retrieval", retrieval.RetrievalTask, retrieval.retrieval, "datasets", CAPTIONED_TARGETS,
         (*_RECALLS, "geometric_mean", "clips")),
    Task("retrieval_finetune", retrieval.RetrievalFineTuneTask, retrieval.retrieval_finetune,
         datasets_field("retrieval_finetune"), CAPTIONED_TARGETS, (*_RECALLS, "start_kept", "runs"),
         frozenset({retrieval.SCRATCH}), resumable=True, over_seeds=True),
    Task("captioning", captioning.CaptioningTask, captioning.captioning, "datasets", CAPTIONED_TARGETS,
         ("bleu_4", "rouge_l", "meteor", "cider", "spice", "spider", "fense", "val_cider", "clips"),
         frozenset({TAGGER}), resumable=True, uses_features=True),
    Task("zeroshot", classification.ZeroShotTask, classification.zeroshot, "datasets", LABELLED_TARGETS,
         ("accuracy", "mAP", "sets", "chance_accuracy")),
    Task("linear_probe", classification.LinearProbeTask, classification.linear_probe, "datasets", LABELLED_TARGETS,
         ("accuracy", "mAP"), frozenset({TAGGER}), over_seeds=True),
    Task("finetune", classification.FineTuneTask, classification.finetune, "datasets", LABELLED_TARGETS,
         ("accuracy", "mAP", "sets", "runs"), frozenset({TAGGER}), resumable=True, over_seeds=True),
)  # fmt: skip
TASKS: dict[str, Task] = {task.name: task for task in _TASKS}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown evaluation task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def check_task(name: str, task, models_root: Path, prepared_root: Path) -> None:
    """At stage entry, before any model is loaded: every dataset is one the task can score and is prepared,
    every model exists. A `ParamsError` names the params key and the valid names."""
    spec = get_task(name)
    key, valid = spec.datasets_field, spec.valid_datasets
    datasets = getattr(task, key)  # a list, or a mapping keyed by dataset
    for i, dataset in enumerate(datasets):
        where = f"evaluate.tasks.{name}.{key}" + (f"[{i}]" if isinstance(datasets, list) else f".{dataset}")
        if dataset not in valid:
            raise ParamsError(f"{where}: {dataset!r} is not a dataset this task scores; valid: {', '.join(valid)}")
        if not (Path(prepared_root) / dataset / "manifest.parquet").is_file():
            raise ParamsError(f"{where}: {dataset!r} is not prepared under {prepared_root} "
                              f"(run `dvc repro prepare@{dataset}`, or remove it from the list)")  # fmt: skip
    for i, model_name in enumerate(task.models):
        folder = model_folder(models_root, model_name)
        if model_name not in spec.special_models and not (folder / "blat.json").is_file():
            found = sorted(p.parent.name for p in Path(models_root).glob("*/blat.json")) + sorted(spec.special_models)
            raise ParamsError(f"evaluate.tasks.{name}.models[{i}]: no BLAT model {model_name!r} ({folder}/blat.json "
                              f"is missing); valid: {', '.join(found) or 'none yet'}, or a model folder")  # fmt: skip


def run_task(name: str, task, models_root: Path, prepared_root: Path, device, scratch: Path | None = None,
             features_root: Path | None = None) -> dict:  # fmt: skip
    """{task name: its metrics}; `scratch / name` holds the resume checkpoints of resumable tasks;
    `features_root` the tagger's frame features (`features@<dataset>`) for the tasks that reuse them."""
    spec = get_task(name)
    folder = Path(scratch) / name if scratch is not None and spec.resumable else None
    extra = {"features_root": features_root} if spec.uses_features else {}
    return {name: spec.run(task, Path(models_root), Path(prepared_root), device, folder, **extra)}
