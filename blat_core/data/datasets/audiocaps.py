"""AudioCaps v1 (Kim et al. 2019): human captions of AudioSet clips; the captioner's training data, a
stage-2 pre-training source and a retrieval / captioning target (test split). Tags are joined from
AudioSet by YouTube id.

Metadata: train.csv (one caption per clip), val.csv and test.csv (five each).
"""

from __future__ import annotations

from pathlib import Path

from blat_core.data.datasets import Recipe
from blat_core.data.datasets.audioset import read_class_labels, read_segments
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require

SPLITS = ("train", "val", "test")


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    """One caption per row, grouped per clip; tags joined from AudioSet by YouTube id."""
    segments, classes = {}, {}
    if joins.get("audioset") is not None:
        classes = read_class_labels(joins["audioset"])
        segments, _ = read_segments(joins["audioset"], classes)
    result = ReadResult()
    for split in SPLITS:
        path = require(meta / f"{split}.csv", "AudioCaps metadata files are train.csv, val.csv, test.csv")
        clips: dict[str, SourceRow] = {}
        for line, fields in csv_rows(path, result=result):
            result.rows_read += 1
            ref = f"{path.name}:{line}"
            try:
                _, ytid, start, caption = fields
                start = int(float(start))
                if not ytid or not caption.strip():
                    raise ValueError("empty youtube_id or caption")
            except ValueError as error:
                result.problems.append(Problem(ref, fields[1] if len(fields) > 1 else "", "malformed_row", str(error)))
                continue
            if ytid not in clips:
                known = segments[ytid][3] if ytid in segments else []
                clips[ytid] = SourceRow(
                    ytid,
                    split,
                    pattern.format(youtube_id=ytid, start_time=start, split=split),
                    ref,
                    youtube_id=ytid,
                    tag_mids=list(known),
                    tag_names=[classes[m] for m in known],
                )
            clips[ytid].captions.append(caption.strip())
        result.rows.extend(clips.values())
    return result


def eval_ids(meta: Path) -> list[tuple[str, str]]:
    return [(fields[1], f"audiocaps/{split}") for split in ("val", "test")
            for _, fields in csv_rows(meta / f"{split}.csv") if len(fields) > 1]  # fmt: skip


RECIPE = Recipe(
    name="audiocaps",
    order=20,
    read=read,
    pattern_fields={"youtube_id": "x", "start_time": 0, "split": "test"},
    eval_splits=frozenset({"val", "test"}),
    joins=("audioset",),
    youtube_eval_ids=eval_ids,
    retrieval_target=True,
)
