"""Readers for the eight datasets' real metadata formats (SPEC §4) into one row type.

Each reader returns the clips it understood plus the problems it met (malformed rows, unknown
mids), so the prepare stage can count and report them instead of crashing or dropping silently.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

YOUTUBE_DATASETS = ("audioset", "audiocaps", "vggsound")


@dataclass
class SourceRow:
    """One clip as its dataset's metadata describes it."""

    audio_id: str
    split: str
    source_path: str  # relative to the dataset's audio folder
    ref: str  # "file:line" for reports
    fold: int = -1
    youtube_id: str = ""
    tag_mids: list[str] = field(default_factory=list)
    tag_names: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """A metadata row or label the reader could not use."""

    ref: str
    audio_id: str
    reason: str
    detail: str


@dataclass
class ReadResult:
    rows: list[SourceRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows_read: int = 0


class MetadataError(RuntimeError):
    """A required metadata file is missing or unreadable as a whole."""


def _require(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise MetadataError(f"{path} not found: {hint}")
    return path


def read_text(path: Path) -> str:
    """A metadata file as text: UTF-8 with or without a byte-order mark (which would otherwise stick to
    the first field); a file that is not UTF-8 is a `MetadataError` naming the file and the line."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MetadataError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[error.start]:02x}); save it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.csv"
        ) from None


def _csv_rows(path: Path, *, skip_comments: bool = False, header: bool = True):
    """Yield (line number, list of fields) for each data row, with AudioSet's spaces after commas."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), skipinitialspace=True)
    first = True
    for fields in reader:
        if skip_comments and fields and fields[0].startswith("#"):
            continue
        if header and first:
            first = False
            continue
        first = False
        if fields:
            yield reader.line_num, fields


def read_class_labels(meta: Path) -> dict[str, str]:
    """AudioSet's `class_labels_indices.csv`: mid -> display name (names may contain commas)."""
    path = _require(
        meta / "class_labels_indices.csv",
        "point prepare.datasets.audioset.meta at the folder "
        "holding class_labels_indices.csv and the *_segments.csv files",
    )
    return {fields[1]: fields[2] for _, fields in _csv_rows(path) if len(fields) == 3}


AUDIOSET_SPLITS = ("balanced_train", "unbalanced_train", "eval")


def read_audioset_segments(meta: Path, classes: dict[str, str]) -> tuple[dict[str, tuple], ReadResult]:
    """All three segment files: YouTube id -> (split, start, end, known mids), plus problems."""
    result, segments = ReadResult(), {}
    for split in AUDIOSET_SPLITS:
        path = _require(
            meta / f"{split}_segments.csv",
            "AudioSet segment lists are named {balanced_train,unbalanced_train,eval}_segments.csv",
        )
        for line, fields in _csv_rows(path, skip_comments=True, header=False):
            result.rows_read += 1
            ref = f"{path.name}:{line}"
            if len(fields) != 4 or not fields[0]:
                detail = f'expected YTID, start_seconds, end_seconds, "mids"; got {len(fields)} fields'
                result.problems.append(Problem(ref, fields[0], "malformed_row", detail))
                continue
            try:
                ytid, start, end, mids = fields[0], float(fields[1]), float(fields[2]), fields[3]
            except ValueError as error:
                result.problems.append(Problem(ref, fields[0], "malformed_row", f"bad time: {error}"))
                continue
            if ytid in segments:
                detail = f"YouTube id already listed at {segments[ytid][4]}"
                result.problems.append(Problem(ref, ytid, "duplicate_id", detail))
                continue
            known = []
            for mid in mids.split(","):
                if mid in classes:
                    known.append(mid)
                else:
                    result.problems.append(Problem(ref, ytid, "unknown_mid", mid))
            segments[ytid] = (split, start, end, known, ref)
    return segments, result


def read_audioset(meta: Path, pattern: str) -> ReadResult:
    classes = read_class_labels(meta)
    segments, result = read_audioset_segments(meta, classes)
    for ytid, (split, start, end, mids, ref) in segments.items():
        if not mids:
            result.problems.append(Problem(ref, ytid, "no_known_labels", "every mid of the row is unknown"))
            continue
        path = pattern.format(youtube_id=ytid, start=start, end=end, split=split)
        names = [classes[m] for m in mids]
        result.rows.append(
            SourceRow(ytid, split, path, ref, youtube_id=ytid, tag_mids=mids, tag_names=names, labels=names)
        )
    return result


def read_audiocaps(meta: Path, pattern: str, audioset_meta: Path | None) -> ReadResult:
    """AudioCaps v1: one caption per row, grouped per clip; tags joined from AudioSet by YouTube id."""
    segments, classes = {}, {}
    if audioset_meta is not None:
        classes = read_class_labels(audioset_meta)
        segments, _ = read_audioset_segments(audioset_meta, classes)
    result = ReadResult()
    for split in ("train", "val", "test"):
        path = _require(meta / f"{split}.csv", "AudioCaps metadata files are train.csv, val.csv, test.csv")
        clips: dict[str, SourceRow] = {}
        for line, fields in _csv_rows(path):
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
                mids = segments[ytid][3] if ytid in segments else []
                clips[ytid] = SourceRow(
                    ytid,
                    split,
                    pattern.format(youtube_id=ytid, start_time=start, split=split),
                    ref,
                    youtube_id=ytid,
                    tag_mids=list(mids),
                    tag_names=[classes[m] for m in mids],
                )
            clips[ytid].captions.append(caption.strip())
        result.rows.extend(clips.values())
    return result


CLOTHO_SPLITS = ("development", "validation", "evaluation")


def read_clotho(meta: Path, pattern: str) -> ReadResult:
    result = ReadResult()
    for split in CLOTHO_SPLITS:
        path = _require(
            meta / f"clotho_captions_{split}.csv",
            "Clotho v2 caption files are clotho_captions_{development,validation,evaluation}.csv",
        )
        for line, fields in _csv_rows(path):
            result.rows_read += 1
            ref = f"{path.name}:{line}"
            captions = [c.strip() for c in fields[1:] if c.strip()]
            if len(fields) != 6 or len(captions) != 5:
                result.problems.append(
                    Problem(
                        ref, fields[0], "malformed_row", f"expected file_name and 5 captions, got {len(fields)} fields"
                    )
                )
                continue
            result.rows.append(
                SourceRow(fields[0], split, pattern.format(file_name=fields[0], split=split), ref, captions=captions)
            )
    return result


def read_macs(meta: Path, pattern: str) -> ReadResult:
    path = _require(meta / "MACS.yaml", "point prepare.datasets.macs.meta at the folder holding MACS.yaml")
    result = ReadResult()
    try:
        files = (yaml.safe_load(read_text(path)) or {}).get("files") or []
    except yaml.YAMLError as error:
        raise MetadataError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    for index, entry in enumerate(files):
        result.rows_read += 1
        ref = f"MACS.yaml:files[{index}]"
        try:
            name = entry["filename"]
            annotations = entry["annotations"]
            captions = [a["sentence"].strip() for a in annotations if a.get("sentence")]
            tags = sorted({t for a in annotations for t in (a.get("tags") or [])})
        except (KeyError, TypeError, AttributeError) as error:
            result.problems.append(Problem(ref, str(entry)[:40], "malformed_row", f"missing field {error}"))
            continue
        result.rows.append(SourceRow(name, "train", pattern.format(filename=name), ref, captions=captions, labels=tags))
    return result


def _read_folds(path: Path, pattern: str, file_key: str, columns: tuple[int, int, int]) -> ReadResult:
    """A single-label, fold-based CSV (ESC-50, UrbanSound8K): `columns` = (file, fold, label) indices."""
    result = ReadResult()
    file_col, fold_col, label_col = columns
    for line, fields in _csv_rows(path):
        result.rows_read += 1
        ref = f"{path.name}:{line}"
        try:
            name, fold, label = fields[file_col], int(fields[fold_col]), fields[label_col]
        except (ValueError, IndexError) as error:
            result.problems.append(Problem(ref, fields[0], "malformed_row", str(error)))
            continue
        path_in_audio = pattern.format(**{file_key: name, "fold": fold})
        result.rows.append(SourceRow(Path(name).stem, "all", path_in_audio, ref, fold=fold, labels=[label]))
    return result


def read_esc50(meta: Path, pattern: str) -> ReadResult:
    path = _require(meta / "esc50.csv", "point prepare.datasets.esc50.meta at ESC-50's meta/ folder")
    return _read_folds(path, pattern, "filename", (0, 1, 3))


def read_us8k(meta: Path, pattern: str) -> ReadResult:
    path = _require(meta / "UrbanSound8K.csv", "point prepare.datasets.us8k.meta at UrbanSound8K's metadata/ folder")
    return _read_folds(path, pattern, "slice_file_name", (0, 5, 7))


def read_fsd50k(meta: Path, pattern: str) -> ReadResult:
    vocab_path = _require(meta / "vocabulary.csv", "point prepare.datasets.fsd50k.meta at FSD50K.ground_truth/")
    vocabulary = {fields[1]: fields[2] for _, fields in _csv_rows(vocab_path, header=False) if len(fields) == 3}
    result = ReadResult()
    for subset in ("dev", "eval"):
        path = _require(meta / f"{subset}.csv", "FSD50K ground truth files are dev.csv and eval.csv")
        for line, fields in _csv_rows(path):
            result.rows_read += 1
            ref = f"{subset}.csv:{line}"
            expected = 4 if subset == "dev" else 3
            if len(fields) != expected or not fields[0]:
                result.problems.append(Problem(ref, fields[0], "malformed_row", f"expected {expected} fields"))
                continue
            names = [n for n in fields[1].split(",") if n]
            unknown = [n for n in names if n not in vocabulary]
            for name in unknown:
                result.problems.append(Problem(ref, fields[0], "unknown_label", name))
            known = [n for n in names if n in vocabulary]
            if not known:
                result.problems.append(Problem(ref, fields[0], "no_known_labels", fields[1]))
                continue
            split = fields[3] if subset == "dev" else "eval"
            result.rows.append(
                SourceRow(
                    fields[0],
                    split,
                    pattern.format(fname=fields[0], subset=subset),
                    ref,
                    labels=known,
                    tag_mids=[vocabulary[n] for n in known],
                    tag_names=known,
                )
            )
    return result


def read_vggsound(meta: Path, pattern: str) -> ReadResult:
    path = _require(meta / "vggsound.csv", "point prepare.datasets.vggsound.meta at the folder holding vggsound.csv")
    result = ReadResult()
    for line, fields in _csv_rows(path, header=False):
        result.rows_read += 1
        try:
            ytid, start, label, split = fields[0], int(fields[1]), fields[2], fields[3]
            if len(fields) != 4 or split not in ("train", "test"):
                raise ValueError(f"expected youtube_id,start,label,train|test; got {fields}")
        except (ValueError, IndexError) as error:
            result.problems.append(Problem(f"vggsound.csv:{line}", fields[0], "malformed_row", str(error)))
            continue
        result.rows.append(
            SourceRow(
                f"{ytid}_{start:06d}",
                split,
                pattern.format(youtube_id=ytid, start=start),
                f"vggsound.csv:{line}",
                youtube_id=ytid,
                labels=[label],
            )
        )
    return result


def evaluation_youtube_ids(metas: dict[str, Path]) -> dict[str, list[str]]:
    """YouTube id -> the evaluation splits holding it (AudioSet eval, AudioCaps val/test, VGGSound test)."""
    held = defaultdict(list)
    if "audioset" in metas:
        for _, fields in _csv_rows(metas["audioset"] / "eval_segments.csv", skip_comments=True, header=False):
            held[fields[0]].append("audioset/eval")
    if "audiocaps" in metas:
        for split in ("val", "test"):
            for _, fields in _csv_rows(metas["audiocaps"] / f"{split}.csv"):
                if len(fields) > 1 and f"audiocaps/{split}" not in held[fields[1]]:
                    held[fields[1]].append(f"audiocaps/{split}")
    if "vggsound" in metas:
        for _, fields in _csv_rows(metas["vggsound"] / "vggsound.csv", header=False):
            if len(fields) == 4 and fields[3] == "test":
                held[fields[0]].append("vggsound/test")
    return dict(held)


# Which splits of each dataset are evaluation splits (never used for training).
EVAL_SPLITS = {
    "audioset": {"eval"},
    "audiocaps": {"val", "test"},
    "clotho": {"validation", "evaluation"},
    "macs": set(),
    "esc50": set(),
    "us8k": set(),
    "fsd50k": {"eval"},
    "vggsound": {"test"},
}


def read_dataset(name: str, meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    """Dispatch to the reader of dataset `name`."""
    simple = {
        "audioset": read_audioset,
        "clotho": read_clotho,
        "macs": read_macs,
        "esc50": read_esc50,
        "us8k": read_us8k,
        "fsd50k": read_fsd50k,
        "vggsound": read_vggsound,
    }
    if name == "audiocaps":
        return read_audiocaps(meta, pattern, joins.get("audioset"))
    if name not in simple:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted([*simple, 'audiocaps']))}")
    return simple[name](meta, pattern)
