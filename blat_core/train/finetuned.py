"""A fine-tuned classifier kept as a model (`finetuned@<name>`, params `finetuned.<name>`): a BLAT model's audio
tower and a linear head trained on a labelled set's training clips — its first evaluation set (the test split
held out, or the first fold), as `evaluate@finetune` trains — scored on the held-out clips and written as a BLAT
model folder with the classifier beside it (`blat_core.models.classifier`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from blat_core import compute
from blat_core.atomic import atomic_path
from blat_core.data.labelled import labelled_clips
from blat_core.data.prepared import PreparedDataset
from blat_core.models.blat_model import load_blat, save_blat
from blat_core.models.checkpoints import read_sidecar
from blat_core.models.classifier import save_classifier
from blat_core.models.towers import TAGGER, model_folder
from blat_core.params import ParamsError, bounded
from blat_core.train import checkpointing
from blat_core.train.finetune import score_classifier, train_classifier


@dataclass
class FinetunedParams:
    """One `finetuned.<name>` entry."""

    model: str  # a BLAT model folder under data/models (blat_stage2, blat_stage1, blat_realonly)
    dataset: str  # a prepared labelled set: one of your own (`recipe: labels`) or a public one
    steps: int = bounded(ge=1, default=100)
    batch_size: int = bounded(ge=1, default=32)
    lr: float = bounded(gt=0.0, default=1.0e-4)
    max_seconds: float = bounded(gt=0.0, default=10.0)  # training crops; the held-out clips are scored whole
    head_lr_scale: float = bounded(gt=0.0, default=10.0)  # the new head's LR over the tower's
    seed: int = 0
    checkpoint_every: int = bounded(ge=1, default=100)
    eval_batch_size: int = bounded(ge=1, default=64)


def keep_finetuned(name: str, params: FinetunedParams, models_root: Path, prepared_root: Path, out: Path,
                   scratch: Path, code: list[Path]) -> dict:  # fmt: skip
    """Train, score and write `out`; returns the metrics {name: {dataset, model, train_clips, test_clips, scores}}."""
    where = f"finetuned.{name}"
    source = model_folder(models_root, params.model)
    if params.model == TAGGER or not (source / "blat.json").is_file():
        raise ParamsError(f"{where}.model: {params.model!r} is not a BLAT model folder ({source}/blat.json); a kept "
                          "classifier is a BLAT model (blat_stage2, blat_stage1, blat_realonly)")  # fmt: skip
    folder = Path(prepared_root) / params.dataset
    if not (folder / "manifest.parquet").is_file():
        raise ParamsError(f"{where}.dataset: {params.dataset!r} is not prepared under {prepared_root} "
                          f"(a dataset of prepare.datasets: `dvc repro prepare@{params.dataset}`)")  # fmt: skip
    prepared = PreparedDataset(folder)
    try:
        data = labelled_clips(prepared, used=True)
    except ValueError as error:
        raise ParamsError(f"{where}.dataset: {error}") from None
    train, test = data.evaluation_sets()[0]
    if not train.any() or not test.any():
        raise ParamsError(f"{where}.dataset: {params.dataset} has {int(train.sum())} training and {int(test.sum())} "
                          "held-out clips; both must be some (a split column with train and test, or folds)")
    untrained = [c for c, n in zip(data.classes, data.targets[train].sum(0), strict=True) if n == 0]
    if untrained:
        raise ParamsError(f"{where}.dataset: label(s) {untrained[:10]} have no training clip in {params.dataset} "
                          "(all in the held-out split or fold): add training clips or move some there")
    device = compute.pick_device()
    model, tokenizer, meta = load_blat(source)
    config = read_sidecar(source / "blat", kind="biencoder")[0]
    inputs = [folder / "manifest.parquet", *sorted(f for f in source.rglob("*") if f.is_file())]
    checkpointer = checkpointing.Checkpointer(
        scratch, checkpointing.fingerprint([dataclasses.asdict(params), name], inputs, code)
    )
    schedule = (params.seed, params.steps, params.batch_size, params.lr, int(params.max_seconds * prepared.sample_rate))
    history: list = []
    trained = train_classifier(lambda: model.audio_encoder, data, prepared, train, *schedule, device, checkpointer,
                               params.checkpoint_every, params.head_lr_scale, history=history)  # fmt: skip
    scores = score_classifier(trained, data, prepared, test, params.eval_batch_size, device)
    result = {
        "dataset": params.dataset,
        "model": params.model,
        "classes": len(data.classes),
        "multi_label": data.multi_label,
        "train_clips": int(train.sum()),
        "test_clips": int(test.sum()),
        "test": {k: round(float(v), 6) for k, v in scores.items()},
        "train_loss": [[step, round(v["loss"], 6)] for step, v in history],
    }
    model = model.cpu()
    described = {**meta, "finetuned": {"name": name, "from": params.model, "dataset": params.dataset,
                                       "params": dataclasses.asdict(params), "test": result["test"]}}  # fmt: skip
    with atomic_path(out) as tmp:
        tmp.mkdir()
        save_blat(tmp, model, model.state_dict(), config, tokenizer, described)
        save_classifier(tmp, trained.head.cpu(), data.classes, data.multi_label, params.dataset,
                        {"test": result["test"], "train_clips": result["train_clips"],
                         "test_clips": result["test_clips"], "from": params.model})  # fmt: skip
    return {name: result}
