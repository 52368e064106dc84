"""Receipts beside every number: which clips an evaluation scored on each test set (coverage, against what the
metadata lists and what the prepare stage could read), the exact ids (pinned lists under metrics/ids/), an
optional restriction to a given id list, and the protocol facts that change numbers.

A task entry carries the ids it scored under `SCORED`; the evaluate stage takes them out (`take_scored`), writes
one sorted list per dataset and records coverage and digests beside the task's numbers:

    {task: {dataset: {model: entry}}, "<task>_coverage": {dataset: {...}}, "<task>_protocol": {...}}
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np

from blat_core.atomic import atomic_path
from blat_core.data.prepared import PreparedDataset

SCORED = "scored_ids"  # the entry key a task puts the ids it scored under (taken out before writing)
ID_LIST_MAX_BYTES = 64 * 2**20  # an id list is read whole: 64 MiB holds ~2M AudioSet ids
NOT_IN_LIST = "not in the id list"


class IdListError(ValueError):
    """An id list that cannot restrict an evaluation: unreadable, or naming clips this copy does not score."""


def coverage_key(task: str) -> str:
    return f"{task}_coverage"


def protocol_key(task: str) -> str:
    return f"{task}_protocol"


def read_id_list(path: str | Path) -> list[str]:
    """The ids of a list file: one per line, UTF-8 (a BOM is tolerated), blank lines and `#` comments ignored.
    Only a regular file of at most ID_LIST_MAX_BYTES is read; a duplicate id is an error naming it."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as error:
        raise IdListError(f"id list {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise IdListError(f"id list {path} is not a regular file")
    if info.st_size > ID_LIST_MAX_BYTES:
        raise IdListError(f"id list {path} is {info.st_size} bytes, over the {ID_LIST_MAX_BYTES}-byte limit")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise IdListError(f"id list {path} is not UTF-8 text ({error})") from None
    ids = [line.strip() for line in text.splitlines()]
    ids = [i for i in ids if i and not i.startswith("#")]
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        raise IdListError(f"id list {path} names {len(repeated)} ids twice (e.g. {', '.join(repeated[:3])})")
    return ids


def allowed_ids(id_lists: dict[str, str], task: str, dataset: str) -> set[str] | None:
    """The ids `evaluate.tasks.<task>.id_lists.<dataset>` restricts scoring to; None without a list."""
    path = id_lists.get(dataset)
    return None if not path else set(read_id_list(path))


def check_listed(allowed: set[str] | None, scorable: list[str], task: str, dataset: str, where: str) -> None:
    """Every id of the list must be a clip this copy can score on that test set; else an error saying how many
    and which (the first few), and where to look."""
    if allowed is None:
        return
    absent = sorted(allowed - set(scorable))
    if absent:
        raise IdListError(
            f"evaluate.tasks.{task}.id_lists.{dataset}: {len(absent)} of {len(allowed)} listed ids are not among "
            f"the {len(scorable)} clips of {where} this copy can score (first: {', '.join(absent[:5])}); they are "
            f"missing from your copy or belong to another split (see {coverage_key(task)} in "
            f"metrics/evaluate_{task}.json). Remove them, or compare on the intersection of both labs' lists."
        )


def take_scored(metrics: dict) -> tuple[dict, dict[str, dict[str, list[str]]]]:
    """(metrics without the entries' SCORED ids, {task: {dataset: ids}}); every model of a dataset must have
    scored the same clips (they read one test set)."""
    lean, scored = {}, {}
    for task, datasets in metrics.items():
        for dataset, models in datasets.items():
            for model, entry in models.items():
                entry = dict(entry)
                ids = entry.pop(SCORED, None)
                lean.setdefault(task, {}).setdefault(dataset, {})[model] = entry
                if ids is None:
                    continue
                seen = scored.setdefault(task, {}).setdefault(dataset, sorted(ids))
                if seen != sorted(ids):
                    raise RuntimeError(f"{task} {dataset}: models scored different clips ({model})")
    return lean, scored


def write_id_lists(folder: Path, scored: dict[str, list[str]]) -> dict[str, dict]:
    """One sorted id list per dataset, `folder/<dataset>.txt` (written whole, atomically); {dataset: {file,
    count, sha256}}."""
    out = {}
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        for dataset, ids in sorted(scored.items()):
            text = "".join(f"{i}\n" for i in sorted(ids))
            (tmp / f"{dataset}.txt").write_text(text, encoding="utf-8")
            out[dataset] = {"file": str(Path(folder) / f"{dataset}.txt"), "count": len(ids),
                            "sha256": hashlib.sha256(text.encode()).hexdigest()}  # fmt: skip
    return out


def coverage(prepared: PreparedDataset, scored: list[str], allowed: set[str] | None, unscored: str,
             id_list: dict | None = None) -> dict:  # fmt: skip
    """Per split of the scored clips: clips listed by the metadata, prepared, scored, and why the rest were not
    (`not_prepared`: the prepare stage's skip reasons; `not_scored`: prepared but left out, by reason)."""
    codes, names = prepared.split_codes()  # columnar: AudioSet's 2M rows, not a dict of them
    ids, scored_set = prepared.ids, set(scored)
    counts = prepared.split_counts()
    out = {}
    for code in sorted({int(codes[prepared.position(i)]) for i in scored}, key=names.__getitem__):
        split = names[code]
        in_split = [ids[row] for row in np.flatnonzero(codes == code)]
        left = [i for i in in_split if i not in scored_set]
        outside = sum(1 for i in left if allowed is not None and i not in allowed)
        not_scored = {NOT_IN_LIST: outside, unscored: len(left) - outside}
        listed = counts.get(split, {}).get("listed")
        out[split] = {
            "listed": listed if listed is not None else len(in_split),
            "listed_known": listed is not None,  # False: prepared before splits.json was written
            "prepared": len(in_split),
            "scored": sum(1 for i in in_split if i in scored_set),
            "not_prepared": counts.get(split, {}).get("skipped", {}),
            "not_scored": {k: v for k, v in not_scored.items() if v},
        }
    return {"splits": out, "ids": id_list or {}, "restricted": allowed is not None}


def coverage_line(title: str, split: str, entry: dict) -> str:
    """"AudioCaps test: 4,411 of 4,875 clips scored (90.5 %); not prepared: missing_audio 400; ..." """
    listed, scored = entry["listed"], entry["scored"]
    share = f" ({100 * scored / listed:.1f} %)" if listed else ""
    parts = [f"{title} {split}: {scored:,} of {listed:,} clips scored{share}"]
    if entry["not_prepared"]:
        parts.append("not prepared: " + ", ".join(f"{k} {v:,}" for k, v in entry["not_prepared"].items()))
    if entry["not_scored"]:
        parts.append("prepared, not scored: " + ", ".join(f"{k} {v:,}" for k, v in entry["not_scored"].items()))
    if not entry.get("listed_known", True):
        parts.append("metadata count unknown (prepared before splits.json): prepared clips shown")
    return "; ".join(parts)
