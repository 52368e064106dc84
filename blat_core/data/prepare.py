"""Ingest one dataset: metadata rows -> checked, resampled int16 mono clips in shards + a manifest.

Bad inputs (missing, unreadable, empty or silent audio; malformed rows; unknown labels) are
skipped, counted by reason and listed; the leakage guard flags clips that sit in any evaluation
split so that no training stage can use them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from blat_core.atomic import write_csv, write_json
from blat_core.data.datasets import RECIPES, YOUTUBE, Recipe, evaluation_youtube_ids, generic, recipe
from blat_core.data.datasets.common import Problem, SourceRow
from blat_core.data.ingest import CHUNK, IN_FLIGHT, Progress, bounded_map, chunks, load_chunk, worker_init
from blat_core.data.resolve import check_pattern, has_wildcard, listing_index, usable_rows
from blat_core.data.shards import ShardWriter, shard_name
from blat_core.data.sources import inside_root
from blat_core.params import ParamsError, bounded

log = logging.getLogger(__name__)

DEMO_ROOT = "data/demo"  # make_demo's output folder (dvc.yaml)
USER_DATASET_FILE = "dataset.json"  # a user dataset's recipe and scoring (generic recipes)
SPLITS_FILE = "splits.json"  # per split: clips listed, prepared, skipped by reason (what coverage reports)
UNASSIGNED = "(split unknown)"  # the split of a metadata row the reader could not parse


@dataclass
class DatasetSource:
    """Where one dataset lives. Either `root`, the folder holding its metadata and audio as downloaded
    (`meta` and `audio` are then sub-folders of it, default: the root itself), or the two folders
    `meta` and `audio`. `audio_pattern` names a row's file in the audio folder (`blat_core.data.resolve`).

    Your own data (`blat_core.data.datasets.generic`, docs/your-data.md): `recipe` ("captions" or "labels")
    and `metadata`, the table inside the meta folder; `audio_pattern` defaults to "{file}"; a table without a
    split column is split by `split_seed`, `val_fraction` and `test_fraction`; `label_delimiter` separates
    several labels in one cell."""

    audio_pattern: str = ""
    root: str = ""
    meta: str = ""
    audio: str = ""
    recipe: str = ""
    metadata: str = ""
    label_delimiter: str = ";"
    split_seed: int = 0
    val_fraction: float = bounded(ge=0.0, le=1.0, default=0.1)
    test_fraction: float = bounded(ge=0.0, le=1.0, default=0.2)

    @property
    def meta_dir(self) -> Path:
        return Path(self.root, self.meta) if self.root else Path(self.meta)

    @property
    def audio_dir(self) -> Path:
        return Path(self.root, self.audio) if self.root else Path(self.audio)

    @property
    def fingerprinted(self) -> Path:
        """What scan hashes as the metadata: the table of a user dataset, else the meta folder."""
        return self.meta_dir / self.metadata if self.recipe else self.meta_dir


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

    def source(self, name: str) -> DatasetSource:
        if name not in self.datasets:
            raise ParamsError(f"params key prepare.datasets.{name} is missing")
        source = self.datasets[name]
        where = f"prepare.datasets.{name}"
        if name not in RECIPES and not source.recipe:
            raise ParamsError(f"unknown dataset {name!r}: known recipes are {', '.join(RECIPES)}; for your own data "
                              f"set `{where}.recipe` to one of {', '.join(generic.KINDS)} (docs/your-data.md)")
        if source.recipe:
            if name in RECIPES:
                raise ParamsError(f"{where}.recipe: {name!r} is a known dataset with its own recipe; give your "
                                  "dataset another name")  # fmt: skip
            if source.recipe not in generic.KINDS:
                raise ParamsError(f"{where}.recipe: {source.recipe!r} is not a recipe; valid: "
                                  f"{', '.join(generic.KINDS)}")  # fmt: skip
            if not source.metadata:
                raise ParamsError(f"{where}.metadata: name the metadata table (e.g. captions.csv), a file inside "
                                  f"`{where}.root` (or `meta`)")  # fmt: skip
            if not (source.label_delimiter and source.label_delimiter.strip()):
                raise ParamsError(f"{where}.label_delimiter must be a visible character (e.g. ';')")
            if source.val_fraction + source.test_fraction >= 1.0:
                raise ParamsError(f"{where}: val_fraction + test_fraction must stay below 1 (training keeps the rest)")
            if inside_root(source.meta_dir, source.metadata) is None:
                raise ParamsError(f"{where}.metadata {source.metadata!r} must be a file inside the dataset's folder")
            source = dataclasses.replace(source, audio_pattern=source.audio_pattern or "{file}")
        else:
            extra = [k for k in _GENERIC_KEYS if getattr(source, k) != getattr(_DEFAULT_SOURCE, k)]
            if extra:
                raise ParamsError(f"{where}: {', '.join(extra)} only apply to your own data (`recipe:`); "
                                  f"{name} has its own recipe")  # fmt: skip
            if not source.audio_pattern:
                raise ParamsError(f"{where}.audio_pattern is missing")
        if not source.root and not (source.meta and source.audio):
            raise ParamsError(
                f"{where}: set `root` (the folder holding its metadata and audio as downloaded) or both `meta` and "
                "`audio`"
            )
        recipe = self.recipe_of(name)
        try:
            check_pattern(source.audio_pattern)
            source.audio_pattern.format(**recipe.pattern_fields)
        except (KeyError, ValueError, IndexError) as error:
            raise ParamsError(
                f"{where}.audio_pattern {source.audio_pattern!r} is not valid "
                f"({error}); placeholders available: {', '.join(recipe.pattern_fields)}"
            ) from None
        return source

    def recipe_of(self, name: str) -> Recipe:
        """Dataset `name`'s recipe: its own, or the generic one its `recipe` key names."""
        source = self.datasets.get(name)
        if source is None or not source.recipe:
            return recipe(name)
        draw = generic.SplitDraw(source.split_seed, source.val_fraction, source.test_fraction)
        return generic.make_recipe(source.recipe, name, source.metadata, draw, source.label_delimiter)


_GENERIC_KEYS = ("recipe", "metadata", "label_delimiter", "split_seed", "val_fraction", "test_fraction")
_DEFAULT_SOURCE = DatasetSource()


class PrepareError(RuntimeError):
    """The dataset has more bad input than `prepare.max_bad_fraction` allows."""


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
    progress: Progress | None = None,
) -> dict:
    """Write `out_dir/{manifest.parquet, waves_*.h5, skipped.csv}` for dataset `name`; return its metrics.
    `listing`: the scan's list of the audio folder's files, for a pattern with wildcards (listed anew if
    None). With `progress`, shards are written in its scratch folder and each finished one is recorded, so a
    killed run resumes after its last whole shard (the output is byte-identical to an uninterrupted run);
    they are moved into `out_dir` at the end."""
    started = time.perf_counter()
    source = params.source(name)
    meta, audio_root = source.meta_dir, source.audio_dir
    own = params.recipe_of(name)
    read = own.read(meta, source.audio_pattern, joins)
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
    shard_dir = out_dir if progress is None else progress.folder
    writer = ShardWriter(shard_dir, params.shard_size_mb * 2**20, {"sample_rate": params.sample_rate})
    records, done = [], 0
    if progress is not None:
        progress.load()
        progress.start()
        done, writer.index = progress.jobs, progress.shards
        records.extend(progress.records)
        problems.extend(progress.problems)
        if done:
            log.info("%s: resuming after %d of %d clips (%d shards already written)", name, done, len(jobs),
                     progress.shards)  # fmt: skip
    skipped_rows.update(p.reason for p in problems[len(read.problems) + len(refused) :])
    new_records, new_problems = [], []
    window = IN_FLIGHT * max(1, workers)
    with ProcessPoolExecutor(max_workers=max(1, workers), initializer=worker_init, initargs=(os.getpid(),)) as pool:
        decoded = bounded_map(pool, load_chunk, chunks(jobs[done:], CHUNK), window)
        loaded = (clip for chunk in decoded for clip in chunk)
        for i, row, (samples, reason, detail) in tqdm(
            zip(range(done, len(jobs)), rows[done:], loaded, strict=True), total=len(jobs), initial=done,
            desc=f"prepare {name}", mininterval=2.0,
        ):  # fmt: skip
            if samples is None:
                problem = Problem(row.ref, row.audio_id, reason, detail)
                problems.append(problem)
                new_problems.append(problem)
                skipped_rows[reason] += 1
                continue
            if writer.would_flush(samples):
                writer.flush()
                if progress is not None:
                    progress.save(i, writer.index, new_records, new_problems)
                new_records, new_problems = [], []
            shard, offset = writer.add(row.audio_id, samples)
            overlap = [s for s in held_out.get(row.youtube_id, []) if not s.startswith(f"{name}/")]
            record = {
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
                "trainable": row.split not in own.eval_splits and not overlap,
                "eval_overlap": overlap,
                "shard": shard,
                "offset": offset,
                "num_samples": len(samples),
            }
            records.append(record)
            new_records.append(record)
    overlap_sources = Counter(source for record in records for source in record["eval_overlap"])
    seconds = 0.0
    for record in records:
        seconds += record["num_samples"] / params.sample_rate
    writer.flush()
    if progress is not None:
        for index in range(writer.shards_written):
            shutil.move(shard_dir / shard_name(index), out_dir / shard_name(index))
        progress.finish()
    _write_manifest(out_dir / "manifest.parquet", records, name, params.sample_rate)
    _write_problems(out_dir / "skipped.csv", problems)
    splits = split_counts(records, problems, split_of)
    write_json(out_dir / SPLITS_FILE, splits)
    if own.write_extra is not None:
        own.write_extra(meta, out_dir)
    if source.recipe:
        _write_user_dataset(out_dir, name, source, read.rows, records, problems)

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


def _write_user_dataset(out_dir: Path, name: str, source: DatasetSource, rows: list[SourceRow], records: list[dict],
                        problems: list[Problem]) -> None:  # fmt: skip
    """A user dataset's `dataset.json` (its recipe and how it is scored, which the evaluation tasks read) and, when
    the split was drawn, `assigned_splits.csv` (file, split). A label whose every clip was skipped is an error."""
    columns = generic.read_table(source.meta_dir / source.metadata).columns
    drawn = "split" not in columns and "fold" not in columns
    info: dict = {"recipe": source.recipe, "metadata": source.metadata,
                  "split": "drawn" if drawn else "fold column" if "fold" in columns else "split column"}
    if source.recipe == "labels":
        prepared = {label for r in records for label in r["labels"]}
        lost = sorted({label for r in rows for label in r.labels} - prepared)
        if lost:
            naming = {r.audio_id for r in rows if set(r.labels) & set(lost)}
            examples = "; ".join(f"{p.ref} {p.audio_id}: {p.reason}" for p in problems if p.audio_id in naming)
            raise PrepareError(f"{name}: label(s) {', '.join(map(repr, lost[:10]))} have no usable clip: every row "
                               f"naming them was skipped ({examples[:600]}); fix their audio, or remove those "
                               "rows")  # fmt: skip
        info["classification"] = dataclasses.asdict(generic.classification_of(records))
        info["classes"] = sorted(prepared)
    if drawn:
        info["draw"] = {"split_seed": source.split_seed, "val_fraction": source.val_fraction,
                        "test_fraction": source.test_fraction}  # fmt: skip
        write_csv(out_dir / "assigned_splits.csv", ["file", "split"], [[r.audio_id, r.split] for r in rows])
    write_json(out_dir / USER_DATASET_FILE, info)


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
