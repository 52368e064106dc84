"""Captioning transfer (paper Table 4, task `evaluate@captioning`): the captioner without tags, trained
on one audio tower's frozen frame features, scored on each target's test split.

The towers are the BLAT audio encoder and the tagger's (our PANNs); both run the same frame extraction
as `features@<dataset>` (full clips, no crop, frames rounded to float16), so only the tower differs.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blat_core import compute
from blat_core.bootstrap.features import clip_frames
from blat_core.data.features import FrameFeatures
from blat_core.data.prepared import PreparedDataset
from blat_core.eval.metrics.captions import caption_scores
from blat_core.eval.receipts import SCORED, allowed_ids, check_listed
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary
from blat_core.models.towers import TAGGER, audio_tower, model_folder, scratch_name
from blat_core.params import bounded
from blat_core.train import checkpointing
from blat_core.train.captioner import CaptionData, CaptionerParams, generate, train_captioner

CODE = [Path(__file__).resolve()]  # resume fingerprints follow this task's imports
log = logging.getLogger(__name__)


@dataclass
class CaptionSplits:
    train: str
    val: str
    test: str


@dataclass
class CaptioningTask:
    """The `evaluate.tasks.captioning` section."""

    models: list[str]  # BLAT model folders and/or "tagger" (the tagger's tower: our PANNs)
    datasets: dict[str, CaptionSplits]  # prepared dataset -> its train / val / test split names
    captioner: CaptionerParams  # the transfer captioner's schedule and metric models (its own, not Table 3's)
    batch_size: int = bounded(ge=1, default=64)  # frame-extraction batch
    id_lists: dict[str, str] = field(default_factory=dict)  # dataset -> a file of the test ids to score


def frame_arrays(tower, prepared: PreparedDataset, ids: list[str], batch_size: int, device) -> list[np.ndarray]:
    """Frozen (num_frames, dim) float32 frame embeddings of each clip, through float16 as in the
    `features` stage's shards (the same extraction code)."""
    tower.to(device).eval()
    out: list[np.ndarray] = [np.empty(0)] * len(ids)
    for index, frames in clip_frames(tower, prepared, ids, batch_size, device, desc=f"frames {prepared.name}"):
        out[index] = frames.astype(np.float32)
    return out


def caption_data(prepared: PreparedDataset, split: str, tower, batch_size: int, device, training: bool,
                 stored: FrameFeatures | None = None, only: set[str] | None = None) -> CaptionData:  # fmt: skip
    """A split's clips and frames: through the leakage gate for training, as they are for validation and testing.
    With `stored` (the tagger's `features@<dataset>` output) its frames are read instead of extracted again:
    the same extraction code wrote them (float16 shards), so the captioner sees the same numbers. `only`: keep
    just these clips (an id list's restriction of the test split)."""
    rows = list(prepared.training_rows(split)) if training else prepared.evaluation_rows(split)
    rows = rows if only is None else [r for r in rows if r["audio_id"] in only]
    if not rows:
        raise ValueError(f"{prepared.folder}: split {split!r} has no clips (check evaluate.tasks.captioning.datasets)")
    ids = [r["audio_id"] for r in rows]
    if stored is not None:
        absent = [i for i in ids if i not in stored]
        if absent:
            raise ValueError(f"{stored.folder} lacks {len(absent)} clips of {prepared.name} {split} (e.g. "
                             f"{absent[:3]}): re-run `dvc repro features@{prepared.name}`")  # fmt: skip
        frames = [stored.frames(i).astype(np.float32) for i in ids]
    else:
        frames = frame_arrays(tower, prepared, ids, batch_size, device)
    return CaptionData(
        ids=ids,
        frames=frames,
        tags=np.zeros((len(ids), 1), dtype=np.float32),  # no tag guidance in Table 4
        captions=[list(r["captions"]) for r in rows],
    )


def transfer_one(
    tower, prepared: PreparedDataset, splits: CaptionSplits, p: CaptionerParams, batch_size: int, device,
    checkpointer: checkpointing.Checkpointer, stored: FrameFeatures | None = None, only: set[str] | None = None,
) -> dict:  # fmt: skip
    """Train the no-tag captioner on `tower`'s frames (or the `stored` ones) of the train split; scores on the
    test split (only the clips of `only`, when given)."""
    train, val, test = (caption_data(prepared, s, tower, batch_size, device, s == splits.train, stored,
                                     only if s == splits.test else None)
                        for s in (splits.train, splits.val, splits.test))  # fmt: skip
    compute.seed_everything(p.seed)
    vocab = Vocabulary.build([c for caps in train.captions for c in caps])
    model = Captioner(feature_dim=int(train.frames[0].shape[1]), vocab_size=len(vocab), num_tags=1, use_tags=False)
    state, history = train_captioner(model.to(device), vocab, train, val, p, device, checkpointer)
    model.load_state_dict(state)
    candidates = generate(model, vocab, test, p, device)
    scores = caption_scores(dict(zip(test.ids, test.captions, strict=True)), candidates, p.local_models())
    return scores | {"val_cider": [round(h, 6) for h in history], "clips": len(test.ids),
                     "examples": {i: candidates[i] for i in test.ids[:3]}, SCORED: list(test.ids)}  # fmt: skip


def captioning(task: CaptioningTask, models_root: Path, prepared_root: Path, device, scratch: Path | None,
               features_root: Path | None = None) -> dict:  # fmt: skip
    """Table 4. The tagger's frames come from `features_root/<dataset>` (`features@<dataset>`) when given."""
    if scratch is None:
        raise ValueError("the captioning task needs a scratch folder for its resume checkpoints (--scratch)")
    out = {}
    for dataset, splits in task.datasets.items():
        prepared = PreparedDataset(prepared_root / dataset)
        allowed = allowed_ids(task.id_lists, "captioning", dataset)
        scorable = [r["audio_id"] for r in prepared.evaluation_rows(splits.test)]
        check_listed(allowed, scorable, "captioning", dataset, f"{dataset} {splits.test}")
        for model_name in task.models:
            folder = model_folder(models_root, model_name)
            inputs = [prepared.folder / "manifest.parquet", *sorted(f for f in folder.rglob("*") if f.is_file())]
            stored = None
            if model_name == TAGGER and features_root is not None and (Path(features_root) / dataset).is_dir():
                stored = FrameFeatures(Path(features_root) / dataset)
                inputs.append(stored.folder / "index.parquet")
            fingerprint = checkpointing.fingerprint(
                [dataclasses.asdict(task.captioner), dataclasses.asdict(splits), dataset, model_name], inputs, CODE
            )
            checkpointer = checkpointing.Checkpointer(scratch / scratch_name(dataset, model_name), fingerprint)
            tower = None if stored is not None else audio_tower(model_name, models_root)
            result = transfer_one(tower, prepared, splits, task.captioner, task.batch_size, device, checkpointer,
                                  stored, allowed)  # fmt: skip
            out.setdefault(dataset, {})[model_name] = result
            log.info("captioning %s on %s frames: CIDEr %.3f, SPIDEr %s", dataset, model_name, result["cider"],
                     "unavailable" if result["spider"] is None else f"{result['spider']:.3f}")  # fmt: skip
    return out
