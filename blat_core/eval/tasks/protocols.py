"""The protocol facts that change an evaluation's numbers, per task: written beside its metrics as
`<task>_protocol` so that `dvc metrics diff` and the report show when two runs were not scored alike."""

from __future__ import annotations

import numpy as np

from blat_core.cpu_runtime import stamp
from blat_core.data.labelled import labelled_clips
from blat_core.data.prepared import PreparedDataset

RANK_TIES = "against the true item: a caption or clip scored exactly as high as the true one ranks ahead of it"
ACCURACY_TIES = "to the first class (argmax)"
TEST_AUDIO = "whole clips, never cropped, eval mode"


def _captions_per_clip(prepared: dict[str, PreparedDataset], scored: dict[str, list[str]]) -> dict:
    out = {}
    for dataset, ids in scored.items():
        counts = [len(prepared[dataset].row(i)["captions"]) for i in ids]
        if counts:
            out[dataset] = {"min": int(min(counts)), "max": int(max(counts)), "mean": round(float(np.mean(counts)), 4)}
    return out


def _sets(prepared: dict[str, PreparedDataset], task) -> dict[str, int]:
    """Per classification set: how many folds / standard splits were evaluated (fine-tuning may stop at max_sets)."""
    out = {}
    for dataset, folder in prepared.items():
        count = len(labelled_clips(folder, used=False).evaluation_sets())  # the same sets, fewer targets
        limit = getattr(task, "max_sets", 0)
        out[dataset] = min(count, limit) if limit else count
    return out


def protocol(name: str, task, prepared: dict[str, PreparedDataset], scored: dict[str, list[str]], device) -> dict:
    """The facts of task `name` (its params `task`) on the datasets it scored (`prepared`: each one, opened)."""
    rates = {d: folder.sample_rate for d, folder in prepared.items()}
    out = {"sample_rate": rates, "test_audio": TEST_AUDIO, "runtime": stamp(device),
           "id_lists": {d: str(p) for d, p in sorted(getattr(task, "id_lists", {}).items())}}  # fmt: skip
    if name in ("retrieval", "retrieval_finetune"):
        out |= {"tie_rule": RANK_TIES, "captions_per_clip": _captions_per_clip(prepared, scored),
                "recall_rule": "a text->audio query hits when its clip is in the top K; an audio->text query hits "
                               "when any of its captions is",
                "captions_rule": "every caption a clip has is one text->audio query (any number per clip: AudioCaps "
                                 "test and Clotho have 5); a clip with fewer captions has fewer audio->text chances "
                                 "to hit, so recalls are comparable across sets only at equal captions_per_clip"}
    if name == "captioning":
        c = task.captioner
        out |= {"references_per_clip": _captions_per_clip(prepared, scored), "beam": c.beam,
                "max_tokens": c.max_tokens, "epochs": c.epochs, "seed": c.seed}  # fmt: skip
    if name in ("zeroshot", "linear_probe", "finetune"):
        out |= {"tie_rule": ACCURACY_TIES, "evaluation_sets": _sets(prepared, task)}
    if name == "zeroshot":
        out |= {"prompt": task.prompt, "label_text": "class name with '_' as spaces, put into the prompt"}
    if name in ("linear_probe", "finetune", "retrieval_finetune"):
        out |= {"seeds": list(task.seeds), "number_of_seeds": len(task.seeds)}
    if name == "linear_probe":
        out |= {"epochs": task.epochs, "lr": task.lr, "weight_decay": task.weight_decay}
    if name in ("finetune", "retrieval_finetune"):
        out |= {"steps": task.steps, "lr": task.lr, "train_crop_seconds": task.max_seconds}
    if name == "finetune":
        out |= {"max_sets": task.max_sets, "kept_weights": "the final step's"}
    if name == "retrieval_finetune":
        out |= {"kept_weights": "the best validation geometric mean of R@1/5/10, the start included"}
    return out
