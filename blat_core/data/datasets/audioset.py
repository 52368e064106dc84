"""AudioSet (Gemmeke et al. 2017): YouTube segments with ontology labels; the tagger's training data,
the source of the synthetic captions, and a multi-label classification target (Table 5, mAP on eval).

Metadata: class_labels_indices.csv and {balanced_train,unbalanced_train,eval}_segments.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import write_csv
from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import MetadataError, Problem, ReadResult, SourceRow, csv_rows, require

SPLITS = ("balanced_train", "unbalanced_train", "eval")


def read_class_labels(meta: Path) -> dict[str, str]:
    """AudioSet's `class_labels_indices.csv`: mid -> display name (names may contain commas)."""
    path = require(
        meta / "class_labels_indices.csv",
        "point prepare.datasets.audioset.meta at the folder "
        "holding class_labels_indices.csv and the *_segments.csv files",
    )
    return {fields[1]: fields[2] for _, fields in csv_rows(path) if len(fields) == 3}


def read_segments(meta: Path, classes: dict[str, str]) -> tuple[dict[str, tuple], ReadResult]:
    """All three segment files: YouTube id -> (split, start, end, known mids, ref), plus problems."""
    result, segments = ReadResult(), {}
    for split in SPLITS:
        path = require(
            meta / f"{split}_segments.csv",
            "AudioSet segment lists are named {balanced_train,unbalanced_train,eval}_segments.csv",
        )
        for line, fields in csv_rows(path, skip_comments=True, header=False, result=result):
            result.rows_read += 1
            ref = f"{path.name}:{line}"
            if len(fields) != 4 or not fields[0]:
                detail = f'expected YTID, start_seconds, end_seconds, "mids"; got {len(fields)} fields'
                result.problems.append(Problem(ref, fields[0], "malformed_row", detail))
                continue
            try:
                ytid, start, end, mid_list = fields[0], float(fields[1]), float(fields[2]), fields[3]
            except ValueError as error:
                result.problems.append(Problem(ref, fields[0], "malformed_row", f"bad time: {error}"))
                continue
            if ytid in segments:
                detail = f"YouTube id already listed at {segments[ytid][4]}"
                result.problems.append(Problem(ref, ytid, "duplicate_id", detail))
                continue
            known = []
            for mid in mid_list.split(","):
                if mid in classes:
                    known.append(mid)
                else:
                    result.problems.append(Problem(ref, ytid, "unknown_mid", mid))
            segments[ytid] = (split, start, end, known, ref)
    return segments, result


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    classes = read_class_labels(meta)
    segments, result = read_segments(meta, classes)
    for ytid, (split, start, end, known, ref) in segments.items():
        if not known:
            result.problems.append(Problem(ref, ytid, "no_known_labels", "every mid of the row is unknown"))
            continue
        path = pattern.format(youtube_id=ytid, start=start, end=end, split=split)
        names = [classes[m] for m in known]
        result.rows.append(
            SourceRow(ytid, split, path, ref, youtube_id=ytid, tag_mids=known, tag_names=names, labels=names)
        )
    return result


def eval_ids(meta: Path) -> list[tuple[str, str]]:
    path = meta / "eval_segments.csv"
    if not path.is_file():
        raise MetadataError(f"{path} not found: the leakage guard needs AudioSet's eval segment list")
    return [(fields[0], "audioset/eval") for _, fields in csv_rows(path, skip_comments=True, header=False)]


def write_classes(meta: Path, out: Path) -> None:
    """The ontology travels with the prepared data: the tagger's class order."""
    classes = read_class_labels(meta)
    write_csv(out / "classes.csv", ["index", "mid", "display_name"],
              [[i, mid, display] for i, (mid, display) in enumerate(classes.items())])  # fmt: skip


RECIPE = Recipe(
    name="audioset",
    order=10,
    read=read,
    pattern_fields={"youtube_id": "x", "start": 0.0, "end": 10.0, "split": "eval"},
    eval_splits=frozenset({"eval"}),
    youtube_eval_ids=eval_ids,
    classification=Classification(multi_label=True, primary_metric="mAP", train_splits=("balanced_train",),
                                  test_split="eval", ontology_classes=True),  # fmt: skip
    write_extra=write_classes,
)
