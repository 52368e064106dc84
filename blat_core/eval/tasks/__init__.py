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

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blat_core.data.datasets import CAPTIONED_TARGETS, LABELLED_TARGETS, RECIPES, dataset_kind
from blat_core.data.prepared import PreparedDataset, read_user_info
from blat_core.eval import receipts
from blat_core.eval.receipts import allowed_ids
from blat_core.eval.schema import datasets_field
from blat_core.eval.tasks import captioning, classification, retrieval
from blat_core.eval.tasks.protocols import protocol
from blat_core.models.towers import EXTERNAL_PREFIX, TAGGER, model_folder
from blat_core.params import ParamsError


@dataclass(frozen=True)
class Task:
    """One evaluation task: `run(params, models_root, prepared_root, device, scratch)` returns
    {dataset: {model: entry}}, each entry holding `entry_keys` (numbers, or {mean, std, seeds} over seeds)."""

    name: str
    params: type
    run: Callable[..., dict]
    datasets_field: str  # the params field naming the datasets: a list, or a mapping keyed by dataset
    kind: str  # the datasets it can score: "captions" (retrieval targets) or "labels" (classification sets)
    entry_keys: tuple[str, ...]
    special_models: frozenset[str] = frozenset()  # model names that are not folders
    resumable: bool = False  # trains long enough to checkpoint into a scratch folder
    over_seeds: bool = False  # entries are {mean, std, seeds}
    uses_features: bool = False  # reads the `features@<dataset>` frames instead of extracting them again
    unscored: str = "not in a test fold or split"  # why a prepared clip of a scored split is not scored


_RECALLS = ("audio_to_text", "text_to_audio")
_TASKS = (
    Task("retrieval", retrieval.RetrievalTask, retrieval.retrieval, "datasets", "captions",
         (*_RECALLS, "geometric_mean", "clips"), unscored="no captions"),
    Task("retrieval_finetune", retrieval.RetrievalFineTuneTask, retrieval.retrieval_finetune,
         datasets_field("retrieval_finetune"), "captions", (*_RECALLS, "start_kept", "runs"),
         frozenset({retrieval.SCRATCH}), resumable=True, over_seeds=True, unscored="no captions"),
    Task("captioning", captioning.CaptioningTask, captioning.captioning, "datasets", "captions",
         ("bleu_4", "rouge_l", "meteor", "cider", "spice", "spider", "fense", "val_cider", "clips"),
         frozenset({TAGGER}), resumable=True, uses_features=True, unscored="no captions"),
    Task("zeroshot", classification.ZeroShotTask, classification.zeroshot, "datasets", "labels",
         ("accuracy", "mAP", "sets", "chance_accuracy")),
    Task("linear_probe", classification.LinearProbeTask, classification.linear_probe, "datasets", "labels",
         ("accuracy", "mAP"), frozenset({TAGGER}), over_seeds=True),
    Task("finetune", classification.FineTuneTask, classification.finetune, "datasets", "labels",
         ("accuracy", "mAP", "sets", "runs"), frozenset({TAGGER}), resumable=True, over_seeds=True,
         unscored="in a fold or split not evaluated (evaluate.tasks.finetune.max_sets)"),
)  # fmt: skip
TASKS: dict[str, Task] = {task.name: task for task in _TASKS}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown evaluation task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def check_task(name: str, task, models_root: Path, prepared_root: Path, id_lists_root: Path | None = None) -> None:
    """At stage entry, before any model is loaded: every dataset is one the task can score and is prepared,
    every model exists, every id list is readable (and inside `id_lists_root` when given). A `ParamsError`
    names the params key and the valid names."""
    spec = get_task(name)
    key = spec.datasets_field
    datasets = getattr(task, key)  # a list, or a mapping keyed by dataset
    for i, dataset in enumerate(datasets):
        where = f"evaluate.tasks.{name}.{key}" + (f"[{i}]" if isinstance(datasets, list) else f".{dataset}")
        folder = Path(prepared_root) / dataset
        info = read_user_info(folder)
        if dataset_kind(dataset, info) != spec.kind and (dataset in RECIPES or info is not None):
            valid = scorable(spec.kind, prepared_root)
            raise ParamsError(f"{where}: {dataset!r} is not a dataset this task scores (it needs a "
                              f"{'captioned' if spec.kind == 'captions' else 'labelled'} set); valid: "
                              f"{', '.join(valid)}")  # fmt: skip
        if not (folder / "manifest.parquet").is_file():
            raise ParamsError(f"{where}: {dataset!r} is not prepared under {prepared_root} (a dataset of "
                              f"prepare.datasets: run `dvc repro prepare@{dataset}`, or remove it from the list)")
    for i, model_name in enumerate(task.models):
        folder = model_folder(models_root, model_name)
        if model_name not in spec.special_models and not (folder / "blat.json").is_file():
            found = sorted(p.parent.name for p in Path(models_root).glob("*/blat.json")) + sorted(spec.special_models)
            raise ParamsError(f"evaluate.tasks.{name}.models[{i}]: no BLAT model {model_name!r} ({folder}/blat.json "
                              f"is missing); valid: {', '.join(found) or 'none yet'}, or a model folder")  # fmt: skip
    check_id_lists(name, task, datasets, id_lists_root)


def scorable(kind: str, prepared_root: Path) -> list[str]:
    """The known datasets of `kind` and the prepared datasets of your own of that kind."""
    known = CAPTIONED_TARGETS if kind == "captions" else LABELLED_TARGETS
    root = Path(prepared_root)
    own = sorted(p.parent.name for p in root.glob("*/dataset.json") if read_user_info(p.parent).get("recipe") == kind)
    return [*known, *own]


def check_id_lists(name: str, task, datasets, root: Path | None = None) -> None:
    """Each `evaluate.tasks.<task>.id_lists` entry names a dataset of the task and a readable list; with `root`
    (the stage's tracked folder, data/id_lists) the file must lie inside it, or DVC would not notice it change."""
    for dataset, path in getattr(task, "id_lists", {}).items():
        where = f"evaluate.tasks.{name}.id_lists.{dataset}"
        if dataset not in datasets:
            raise ParamsError(f"{where}: {dataset!r} is not among the task's datasets ({', '.join(datasets)})")
        if root is not None and not _within(Path(root), Path(path)):
            raise ParamsError(f"{where}: {path!r} is not inside {root}/ (the folder every evaluate stage depends on, "
                              f"so that DVC re-runs it when a list changes): put the list there")  # fmt: skip
        try:
            receipts.read_id_list(path)
        except receipts.IdListError as error:
            raise ParamsError(f"{where}: {error}") from None


def _within(root: Path, path: Path) -> bool:
    base, full = os.path.abspath(root), os.path.abspath(path)
    return full != base and os.path.commonpath([base, full]) == base


def external_models(models_root: Path) -> list[str]:
    """The model names of the folders the `import_external` stage wrote (`external:<name>`), sorted."""
    folder = Path(models_root) / "external"
    return sorted(EXTERNAL_PREFIX + p.parent.name for p in folder.glob("*/blat.json")) if folder.is_dir() else []


def with_external(task, name: str, models_root: Path):
    """The task's params with every imported external model added to its models (scored like our own)."""
    extra = [m for m in external_models(models_root) if m not in task.models]
    return dataclasses.replace(task, models=[*task.models, *extra]) if extra else task


def receipts_of(name: str, task, prepared_root: Path, scored: dict[str, list[str]], lists: dict[str, dict],
                device) -> dict:  # fmt: skip
    """`<task>_coverage` ({dataset: coverage of each scored split, its pinned list}) and `<task>_protocol`."""
    spec = get_task(name)
    prepared = {dataset: PreparedDataset(Path(prepared_root) / dataset) for dataset in sorted(scored)}
    coverage = {}
    for dataset, ids in sorted(scored.items()):
        allowed = allowed_ids(getattr(task, "id_lists", {}), name, dataset)
        coverage[dataset] = receipts.coverage(prepared[dataset], ids, allowed, spec.unscored, lists.get(dataset))
    return {receipts.coverage_key(name): coverage,
            receipts.protocol_key(name): protocol(name, task, prepared, scored, device)}  # fmt: skip


def run_task(name: str, task, models_root: Path, prepared_root: Path, device, scratch: Path | None = None,
             features_root: Path | None = None) -> dict:  # fmt: skip
    """{task name: its metrics}; `scratch / name` holds the resume checkpoints of resumable tasks;
    `features_root` the tagger's frame features (`features@<dataset>`) for the tasks that reuse them."""
    spec = get_task(name)
    folder = Path(scratch) / name if scratch is not None and spec.resumable else None
    extra = {"features_root": features_root} if spec.uses_features else {}
    return {name: spec.run(task, Path(models_root), Path(prepared_root), device, folder, **extra)}
