"""Retrieval tasks (paper Table 2): zero-shot text<->audio retrieval on each target's test split
(`evaluate@retrieval`), and contrastive fine-tuning on each target from BLAT vs from scratch
(`evaluate@retrieval_finetune`), mean ± std over seeds."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from blat_core import compute
from blat_core.data.pairs import RetrievalSet, caption_pairs
from blat_core.distributed import Ranks
from blat_core.eval.metrics.retrieval import DIRECTIONS
from blat_core.eval.receipts import SCORED, allowed_ids, check_listed
from blat_core.eval.tasks.common import mean_std
from blat_core.models.blat_model import load_blat
from blat_core.models.embed import score_retrieval
from blat_core.models.towers import TAGGER, model_folder, scratch_name
from blat_core.params import bounded
from blat_core.train import checkpointing
from blat_core.train.pretrain import ContrastiveRun, contrastive_training

CODE = [Path(__file__).resolve()]  # resume fingerprints follow this task's imports
log = logging.getLogger(__name__)
SCRATCH = "scratch"  # the model name meaning "start from the tagger's tower and a fresh text tower"


@dataclass
class RetrievalTask:
    """The `evaluate.tasks.retrieval` section."""

    models: list[str]  # model folders under the models root (blat_stage2, blat_realonly, ...)
    datasets: dict[str, str]  # prepared dataset -> its test split
    batch_size: int = bounded(ge=1, default=64)
    id_lists: dict[str, str] = field(default_factory=dict)  # dataset -> a file of the ids to score (receipts)


def retrieval(task: RetrievalTask, models_root: Path, prepared_root: Path, device, scratch: Path | None) -> dict:
    out = {}
    for model_name in task.models:
        model, tokenizer, _ = load_blat(model_folder(models_root, model_name), device)
        for dataset, split in task.datasets.items():
            test = test_set(prepared_root, dataset, split, task.id_lists, "retrieval")
            metrics = score_retrieval(model, tokenizer, test, task.batch_size, device)
            out.setdefault(dataset, {})[model_name] = metrics | {"clips": len(test.audio_ids),
                                                                 SCORED: test.audio_ids}  # fmt: skip
            log.info("%s %s: A->T R@1 %.3f, T->A R@1 %.3f", model_name, dataset,
                     metrics["audio_to_text"]["R@1"], metrics["text_to_audio"]["R@1"])  # fmt: skip
    return out


def test_set(prepared_root: Path, dataset: str, split: str, id_lists: dict[str, str], task: str) -> RetrievalSet:
    """A test split's captioned clips, restricted to `id_lists[dataset]` when one is given."""
    test = RetrievalSet.from_split(prepared_root / dataset, split)
    allowed = allowed_ids(id_lists, task, dataset)
    check_listed(allowed, test.audio_ids, task, dataset, f"{dataset} {split} (captioned clips)")
    return test if allowed is None else test.subset(allowed)


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
    checkpoint_every: int = bounded(ge=1, default=100)
    eval_batch_size: int = bounded(ge=1, default=64)  # validation during fine-tuning
    scratch_text_folder: str = ""  # the text tower "scratch" starts from ("": the default MiniLM folder)
    id_lists: dict[str, str] = field(default_factory=dict)  # dataset -> a file of the test ids to score


def retrieval_finetune(
    task: RetrievalFineTuneTask, models_root: Path, prepared_root: Path, device, scratch: Path | None
) -> dict:
    out = {}
    for dataset, splits in task.targets.items():
        pairs = caption_pairs([prepared_root / dataset])
        val = RetrievalSet.from_split(prepared_root / dataset, splits["val"])
        test = test_set(prepared_root, dataset, splits["test"], task.id_lists, "retrieval_finetune")
        for model_name in task.models:
            runs, records, start_scores = [], [], {}
            for seed in task.seeds:
                metrics, record = _finetune_one(task, model_name, seed, pairs, val, test, device, scratch, dataset,
                                                prepared_root, models_root, start_scores)  # fmt: skip
                runs.append({f"{d}/{k}": v for d in DIRECTIONS for k, v in metrics[d].items()})
                records.append(record)
            summary = mean_std(runs)
            out.setdefault(dataset, {})[model_name] = {
                **{d: {k: summary[f"{d}/{k}"] for k in ("R@1", "R@5", "R@10", "median_rank")} for d in DIRECTIONS},
                "start_kept": sum(r["start_kept"] for r in records),
                "runs": records,
                SCORED: test.audio_ids,
            }
            log.info("fine-tuned retrieval %s from %s: A->T R@1 %.3f, T->A R@1 %.3f; start kept by %d of %d seeds",
                     dataset, model_name, summary["audio_to_text/R@1"]["mean"], summary["text_to_audio/R@1"]["mean"],
                     sum(r["start_kept"] for r in records), len(records))  # fmt: skip
    return out


def _finetune_one(task: RetrievalFineTuneTask, model_name: str, seed: int, pairs, val: RetrievalSet,
                  test: RetrievalSet, device, scratch: Path | None, dataset: str, prepared_root: Path,
                  models_root: Path, start_scores: dict) -> tuple[dict, dict]:  # fmt: skip
    """One seed: (test metrics of the kept weights, its record: steps run, kept step, validation curve).

    Model selection by the validation split's geometric mean, the starting weights included (step 0):
    the same rule for BLAT and for from-scratch. A run whose start is kept is recorded as such.
    `start_scores` keeps a saved model's start scores across seeds (its weights do not depend on the seed;
    a from-scratch start's fresh projections do)."""
    compute.seed_everything(seed)
    model, tokenizer = _retrieval_start(model_name, task, models_root)
    run = finetune_run(task, seed)
    model.to(device)
    cache = start_scores if model_name != SCRATCH else {}
    if "val" not in cache:
        cache["val"] = score_retrieval(model, tokenizer, val, run.eval_batch_size, device)["geometric_mean"]
    start = cache["val"]
    start_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    checkpointer = _checkpointer(task, scratch, dataset, model_name, seed, prepared_root, models_root)
    best, summary = contrastive_training(model, tokenizer, pairs, val, run, device, Ranks(), checkpointer)
    start_kept = not summary["best"]["geometric_mean"] > start
    model.load_state_dict(start_state if start_kept else best)
    curve = [[0, round(start, 6)]] + [[h["step"], round(h["geometric_mean"], 6)] for h in summary["history"]]
    record = {"seed": seed, "steps": run.steps, "kept_step": 0 if start_kept else summary["best"]["step"],
              "start_kept": start_kept, "val_geometric_mean": curve}  # fmt: skip
    if not start_kept:
        return score_retrieval(model, tokenizer, test, task.batch_size, device), record
    if "test" not in cache:
        cache["test"] = score_retrieval(model, tokenizer, test, task.batch_size, device)
    return cache["test"], record


def finetune_run(task: RetrievalFineTuneTask, seed: int) -> ContrastiveRun:
    """The contrastive run of one seed: the task's schedule, no weight decay."""
    return ContrastiveRun(
        batch_size=task.batch_size, lr=task.lr, weight_decay=0.0, max_seconds=task.max_seconds, steps=task.steps,
        warmup_steps=task.warmup_steps, val_every=task.val_every, eval_batch_size=task.eval_batch_size,
        log_every=max(1, task.steps // 4), checkpoint_every=task.checkpoint_every, seed=seed,
    )  # fmt: skip


def _checkpointer(task, scratch: Path | None, dataset: str, model_name: str, seed: int, prepared_root: Path,
                  models_root: Path) -> checkpointing.Checkpointer:  # fmt: skip
    """Resume checkpoints of one (dataset, model, seed) run under the task's scratch folder."""
    if scratch is None:
        raise ValueError("the retrieval_finetune task needs a scratch folder for its resume checkpoints (--scratch)")
    folder = model_folder(models_root, model_name if model_name != SCRATCH else TAGGER)
    inputs = [Path(prepared_root) / dataset / "manifest.parquet", *sorted(f for f in folder.rglob("*") if f.is_file())]
    fingerprint = checkpointing.fingerprint([dataclasses.asdict(task), dataset, model_name, seed], inputs, CODE)
    return checkpointing.Checkpointer(scratch / f"{scratch_name(dataset, model_name)}_seed{seed}", fingerprint)


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
