"""Ingest one dataset: metadata rows -> checked, resampled int16 mono clips in shards + a manifest.

Bad inputs (missing, unreadable, empty or silent audio; malformed rows; unknown labels) are
skipped, counted by reason and listed; the leakage guard flags clips that sit in any evaluation
split so that no training stage can use them.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from blat_core.atomic import write_csv, write_json
from blat_core.data.audio import load_clip
from blat_core.data.datasets import RECIPES, YOUTUBE, evaluation_youtube_ids, read_dataset, recipe
from blat_core.data.datasets.common import Problem, SourceRow
from blat_core.data.resolve import ListingIndex, check_pattern, has_wildcard
from blat_core.data.shards import ShardWriter
from blat_core.data.sources import inside_root, list_audio
from blat_core.params import ParamsError, bounded
from blat_core.runtime import die_with_parent

log = logging.getLogger(__name__)

DEMO_ROOT = "data/demo"  # make_demo's output folder (dvc.yaml)
SPLITS_FILE = "splits.json"  # per split: clips listed, prepared, skipped by reason (what coverage reports)
UNASSIGNED = "(split unknown)"  # the split of a metadata row the reader could not parse


@dataclass
class DatasetSource:
    """Where one dataset lives. Either `root`, the folder holding its metadata and audio as downloaded
    (`meta` and `audio` are then sub-folders of it, default: the root itself), or the two folders
    `meta` and `audio`. `audio_pattern` names a row's file in the audio folder (`blat_core.data.resolve`)."""

    audio_pattern: str
    root: str = ""
    meta: str = ""
    audio: str = ""

    @property
    def meta_dir(self) -> Path:
        return Path(self.root, self.meta) if self.root else Path(self.meta)

    @property
    def audio_dir(self) -> Path:
        return Path(self.root, self.audio) if self.root else Path(self.audio)


@dataclass
class PrepareParams:
    """The `prepare` section of params.yaml."""

    sample_rate: int = bounded(ge=8000)
    shard_size_mb: int = bounded(ge=1)
    max_bad_fraction: float = bounded(ge=0.0, le=1.0)
    silence_dbfs: float = bounded(le=0.0)
    min_seconds: float = bounded(ge=0.0)  # shorter files are skipped (too_short)
    max_seconds: float = bounded(gt=0.0)  # longer files are skipped (too_long) before being decoded
    datasets: dict[str, DatasetSource]

    def __post_init__(self):
        if self.min_seconds >= self.max_seconds:
            raise ParamsError(f"prepare.min_seconds ({self.min_seconds}) must be below prepare.max_seconds "
                              f"({self.max_seconds})")  # fmt: skip

    @property
    def reads_demo_corpus(self) -> bool:
        """Whether the datasets are make_demo's (a root, metadata or audio folder under DEMO_ROOT)."""
        return any(DEMO_ROOT in f"{s.root} {s.meta} {s.audio}" for s in self.datasets.values())

    def source(self, name: str) -> DatasetSource:
        if name not in RECIPES:
            raise ParamsError(f"unknown dataset {name!r}; known: {', '.join(RECIPES)}")
        if name not in self.datasets:
            raise ParamsError(f"params key prepare.datasets.{name} is missing")
        source = self.datasets[name]
        if not source.root and not (source.meta and source.audio):
            raise ParamsError(
                f"prepare.datasets.{name}: set `root` (the folder holding its metadata and audio as downloaded) "
                "or both `meta` and `audio`"
            )
        try:
            check_pattern(source.audio_pattern)
            source.audio_pattern.format(**recipe(name).pattern_fields)
        except (KeyError, ValueError, IndexError) as error:
            raise ParamsError(
                f"prepare.datasets.{name}.audio_pattern {source.audio_pattern!r} is not valid "
                f"({error}); placeholders available: {', '.join(recipe(name).pattern_fields)}"
            ) from None
        return source


class PrepareError(RuntimeError):
    """The dataset has more bad input than `prepare.max_bad_fraction` allows."""


# ---------------------------------------------------------------- decoding (runs in worker processes)
def _load_job(job: tuple):
    return load_clip(*job)


def _worker_init(parent: int) -> None:
    import torch

    die_with_parent(parent)  # a SIGKILLed stage must not leave its decoding workers running
    torch.set_num_threads(1)  # one decoding process per core; no thread oversubscription


def usable_rows(
    rows: list[SourceRow], root: Path, name: str, index: ListingIndex | None = None
) -> tuple[list[tuple[SourceRow, str]], list[Problem]]:
    """(row, its audio path) for the rows whose audio lies inside the dataset's audio folder, one per audio
    id (the first); the others as problems (`outside_audio_root`, `duplicate_id`). With an `index` (the
    pattern has wildcards) each row's path is first resolved against the listing: `missing_audio` when no
    listed file matches, `ambiguous_audio` when several do; `source_path` becomes the file found."""
    kept, problems, first = [], [], {}
    for row in rows:
        if index is not None:
            found = index.matches(row.source_path)
            if len(found) != 1:
                if found:
                    more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
                    detail = (f"{row.source_path!r} matches both {found[0]!r} and {found[1]!r}{more}; "
                              f"make prepare.datasets.{name}.audio_pattern narrower")  # fmt: skip
                    problems.append(Problem(row.ref, row.audio_id, "ambiguous_audio", detail))
                else:
                    detail = f"no listed file in {root} matches {row.source_path!r}"
                    problems.append(Problem(row.ref, row.audio_id, "missing_audio", detail))
                continue
            row.source_path = found[0]
        path = inside_root(root, row.source_path)
        if path is None:
            detail = f"{row.source_path!r} is absolute or climbs out of prepare.datasets.{name}.audio"
            problems.append(Problem(row.ref, row.audio_id, "outside_audio_root", detail))
        elif row.audio_id in first:
            detail = f"audio id {row.audio_id!r} is already used by {first[row.audio_id]}"
            problems.append(Problem(row.ref, row.audio_id, "duplicate_id", detail))
        else:
            first[row.audio_id] = row.ref
            kept.append((row, path))
    return kept, problems


def listing_index(audio_root: Path, listing: list[str] | None) -> ListingIndex:
    """The index wildcard patterns resolve against: the scan's listing, or (no scan at hand) a new one."""
    if listing is None:
        listing = [p.as_posix() for p in list_audio(audio_root)[0]] if audio_root.is_dir() else []
    log.info("resolving audio paths against a listing of %d files", len(listing))
    return ListingIndex(listing)


# ---------------------------------------------------------------- the stage's work
MANIFEST_SCHEMA = pa.schema(
    [
        ("audio_id", pa.string()),
        ("split", pa.string()),
        ("fold", pa.int16()),
        ("source_path", pa.string()),
        ("youtube_id", pa.string()),
        ("duration", pa.float32()),
        ("tag_mids", pa.list_(pa.string())),
        ("tag_names", pa.list_(pa.string())),
        ("captions", pa.list_(pa.string())),
        ("labels", pa.list_(pa.string())),
        ("trainable", pa.bool_()),
        ("eval_overlap", pa.list_(pa.string())),
        ("shard", pa.int32()),
        ("offset", pa.int64()),
        ("num_samples", pa.int64()),
    ]
)


def prepare_dataset(
    name: str,
    params: PrepareParams,
    joins: dict[str, Path],
    out_dir: Path,
    workers: int = 1,
    listing: list[str] | None = None,
) -> dict:
    """Write `out_dir/{manifest.parquet, waves_*.h5, skipped.csv}` for dataset `name`; return its metrics.
    `listing`: the scan's list of the audio folder's files, for a pattern with wildcards (listed anew if
    None)."""
    started = time.perf_counter()
    source = params.source(name)
    meta, audio_root = source.meta_dir, source.audio_dir
    read = read_dataset(name, meta, source.audio_pattern, joins)
    held_out = evaluation_youtube_ids(joins) if name in YOUTUBE else {}

    index = listing_index(audio_root, listing) if has_wildcard(source.audio_pattern) else None
    split_of = {}  # audio id -> the split its first metadata row names (what coverage counts by)
    for row in read.rows:
        split_of.setdefault(row.audio_id, row.split)
    usable, refused = usable_rows(read.rows, audio_root, name, index)
    rows = [row for row, _ in usable]
    problems = list(read.problems) + refused
    skipped_rows = Counter(p.reason for p in problems if p.reason not in ("unknown_mid", "unknown_label"))
    limits = (params.sample_rate, params.silence_dbfs, params.min_seconds, params.max_seconds)
    jobs = [(path, *limits) for _, path in usable]
    writer = ShardWriter(out_dir, params.shard_size_mb * 2**20, {"sample_rate": params.sample_rate})
    records, overlap_sources, seconds = [], Counter(), 0.0
    with ProcessPoolExecutor(max_workers=max(1, workers), initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        loaded = pool.map(_load_job, jobs, chunksize=8)
        for row, (samples, reason, detail) in tqdm(
            zip(rows, loaded, strict=True), total=len(jobs), desc=f"prepare {name}", mininterval=2.0
        ):
            if samples is None:
                problems.append(Problem(row.ref, row.audio_id, reason, detail))
                skipped_rows[reason] += 1
                continue
            shard, offset = writer.add(row.audio_id, samples)
            overlap = [s for s in held_out.get(row.youtube_id, []) if not s.startswith(f"{name}/")]
            overlap_sources.update(overlap)
            records.append(
                {
                    "audio_id": row.audio_id,
                    "split": row.split,
                    "fold": row.fold,
                    "source_path": row.source_path,
                    "youtube_id": row.youtube_id,
                    "duration": len(samples) / params.sample_rate,
                    "tag_mids": row.tag_mids,
                    "tag_names": row.tag_names,
                    "captions": row.captions,
                    "labels": row.labels,
                    "trainable": row.split not in recipe(name).eval_splits and not overlap,
                    "eval_overlap": overlap,
                    "shard": shard,
                    "offset": offset,
                    "num_samples": len(samples),
                }
            )
            seconds += len(samples) / params.sample_rate
    writer.flush()
    _write_manifest(out_dir / "manifest.parquet", records, name, params.sample_rate)
    _write_problems(out_dir / "skipped.csv", problems)
    splits = split_counts(records, problems, split_of)
    write_json(out_dir / SPLITS_FILE, splits)
    if recipe(name).write_extra is not None:
        recipe(name).write_extra(meta, out_dir)

    elapsed = time.perf_counter() - started
    # Throughput goes to the log, not the metrics: metrics must be identical when a run is repeated.
    log.info("%s: %d clips read in %.1f s (%.1f clips/s)", name, len(rows), elapsed, len(rows) / max(elapsed, 1e-9))
    skipped = sum(skipped_rows.values())
    attempted = len(records) + skipped
    metrics = {
        "rows_read": read.rows_read,
        "clips": len(records),
        "hours": round(seconds / 3600, 4),
        "skipped": dict(sorted(skipped_rows.items())),
        "skipped_total": skipped,
        "unknown_labels": sum(1 for p in problems if p.reason in ("unknown_mid", "unknown_label")),
        "bad_fraction": round(skipped / attempted, 6) if attempted else 0.0,
        "shards": writer.shards_written,
        "splits": splits,
        "leakage": {
            "flagged_clips": sum(1 for r in records if r["eval_overlap"]),
            "by_source": dict(sorted(overlap_sources.items())),
        },
    }
    if attempted == 0:
        raise PrepareError(f"{name}: no clips found; check prepare.datasets.{name}.meta ({meta})")
    if metrics["bad_fraction"] > params.max_bad_fraction:
        examples = "; ".join(f"{p.reason} {p.audio_id} ({p.detail})" for p in problems[:5])
        raise PrepareError(
            f"{name}: {skipped} of {attempted} clips are bad ({metrics['bad_fraction']:.1%} > "
            f"prepare.max_bad_fraction={params.max_bad_fraction}); by reason {dict(skipped_rows)}; "
            f"e.g. {examples}. Fix prepare.datasets.{name}.audio / audio_pattern, or raise the limit."
        )
    return metrics


def split_counts(records: list[dict], problems: list[Problem], split_of: dict[str, str]) -> dict:
    """Per split: the rows its metadata lists (`listed` = `prepared` + the skipped ones), how many clips were
    prepared, and why the rest were not (the skip reasons). A problem met before the reader knew a row's split
    (a malformed row) counts under `UNASSIGNED`; label problems (`unknown_mid`, `unknown_label`) drop no clip
    and are not counted."""
    prepared = Counter(record["split"] for record in records)
    skipped: dict[str, Counter] = {}
    for problem in problems:
        if problem.reason not in ("unknown_mid", "unknown_label"):
            skipped.setdefault(split_of.get(problem.audio_id, UNASSIGNED), Counter())[problem.reason] += 1
    return {
        split: {"listed": prepared[split] + sum(skipped.get(split, {}).values()), "prepared": prepared[split],
                "skipped": dict(sorted(skipped.get(split, {}).items()))}
        for split in sorted(set(prepared) | set(skipped))
    }  # fmt: skip


def _write_manifest(path: Path, records: list[dict], name: str, sample_rate: int) -> None:
    columns = {f.name: [r[f.name] for r in records] for f in MANIFEST_SCHEMA}
    table = pa.table(columns, schema=MANIFEST_SCHEMA).replace_schema_metadata(
        {"blat.dataset": name, "blat.sample_rate": str(sample_rate)}
    )
    pq.write_table(table, path, compression="zstd")


def _write_problems(path: Path, problems: list[Problem]) -> None:
    rows = [[p.ref, p.audio_id, p.reason, p.detail] for p in problems]
    write_csv(path, ["ref", "audio_id", "reason", "detail"], rows)
