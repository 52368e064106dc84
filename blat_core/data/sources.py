"""Cheap fingerprints of a dataset's inputs, so `dvc status` never hashes millions of audio files.

The metadata files are hashed whole (they are small). The audio folder is summarised by a listing:
every audio file's relative path, size, and a hash of three 4 KiB blocks (start, middle, end).
A file added, removed, truncated or re-encoded changes the listing; an edit that touches none of
the sampled blocks and keeps the size does not (force that case with `dvc repro -f prepare@<name>`).

Only regular files are read: FIFOs, sockets and devices, dangling symlinks and symlink loops are
skipped and counted (a FIFO named `x.wav` would otherwise block the read forever). Symlinks placed
inside the audio folder are followed (that is how a dataset points at files stored elsewhere); a
folder reached twice through links is listed once. Metadata can never name a file outside the
folder: `inside_root` rejects absolute names and names that climb out with `..`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from array import array
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from blat_core.atomic import atomic_path

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".opus"}
# What a metadata folder's fingerprint hashes: the readers read only these. Anything else beside them
# (the audio of a one-root dataset, archives kept after extraction) is not metadata and is not read.
METADATA_EXTENSIONS = {".csv", ".tsv", ".txt", ".yaml", ".yml", ".json"}
BLOCK = 4096
SOURCES = "data/sources"  # scan's output folder in a project (dvc.yaml): <dataset>.json fingerprints
DEMO_RECORD = "data/demo.json"  # make_demo's record of the metadata it wrote (dvc.yaml)


def file_digest(path: Path) -> str:
    """blake2b of a whole (small) file."""
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def sampled_digest(path: Path) -> str:
    """blake2b of the size and of three 4 KiB blocks: start, middle, end."""
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with path.open("rb") as handle:
        for offset in sorted({0, max(0, size // 2 - BLOCK // 2), max(0, size - BLOCK)}):
            handle.seek(offset)
            digest.update(handle.read(BLOCK))
    return digest.hexdigest()


def inside_root(root: str | Path, relative: str) -> str | None:
    """`root/relative`, normalised, when it stays inside `root`; None for an empty or absolute name or one
    that climbs out with `..`. Lexical on purpose: metadata cannot escape the folder, while symlinks the
    user placed inside it are followed when the file is opened."""
    if not relative or os.path.isabs(relative) or "\0" in relative:
        return None
    base = os.path.normpath(root)
    joined = os.path.normpath(os.path.join(base, relative))
    return joined if joined != base and os.path.commonpath([base, joined]) == base else None


def regular_file_problem(path: str | Path) -> tuple[str, str] | None:
    """None for a regular file (after following symlinks); else (reason, detail): `missing_audio` for a
    missing file or a dangling link, `broken_link` for a symlink loop, `not_regular_file` for a FIFO,
    socket, device or folder."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return ("missing_audio", str(path)) if not os.path.islink(path) else ("broken_link", f"{path}: dangling")
    except OSError as error:  # ELOOP (a symlink loop), EACCES, ENAMETOOLONG
        return "broken_link", f"{path}: {error.strerror}"
    if not stat.S_ISREG(mode):
        return "not_regular_file", f"{path}: {_kind(mode)}"
    return None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def _walk_audio(root: Path) -> tuple[pa.StringArray, np.ndarray, Counter]:
    """Regular audio files under `root` (by extension): their relative POSIX paths in `Path` order (by parts),
    one stat row each (STAT_FIELDS), and the entries skipped by reason. One `stat` per file, no read; the
    paths are kept in Arrow arrays (≈60 bytes a file), not millions of Python objects.

    A depth-first walk that visits each folder's entries in name order yields the paths already in `Path`
    order (parts compare name by name), so nothing is sorted but one folder at a time."""
    names, chunks, stats, skipped, visited = [], [], array("q"), Counter(), set()
    stack: list[tuple[Iterator[os.DirEntry], str]] = []

    def enter(folder: str, prefix: str) -> None:
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in visited:  # reached again through a link (or a link loop)
            skipped["folder_loop"] += 1
            return
        visited.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(folder) as found:
                entries = sorted(found, key=lambda entry: entry.name)
        except OSError:
            skipped["unreadable_folder"] += 1
            return
        stack.append((iter(entries), prefix))

    enter(str(root), "")
    while stack:
        entries, prefix = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        try:
            is_dir = entry.is_dir()  # follows a link: that is how a dataset points at files stored elsewhere
        except OSError:
            is_dir = False
        if is_dir:
            enter(entry.path, f"{prefix}{entry.name}/")
            continue
        if os.path.splitext(entry.name)[1].lower() not in AUDIO_EXTENSIONS:
            continue
        try:
            info = os.stat(entry.path)
        except OSError:
            skipped[regular_file_problem(entry.path)[0]] += 1
            continue
        if not stat.S_ISREG(info.st_mode):
            skipped["not_regular_file"] += 1
            continue
        names.append(prefix + entry.name)
        stats.extend(stat_key(info))
        if len(names) == _BATCH:
            chunks.append(pa.array(names, pa.string()))
            names = []
    chunks.append(pa.array(names, pa.string()))
    table = np.frombuffer(stats, dtype=np.int64).reshape(-1, len(STAT_FIELDS))
    return pa.concat_arrays(chunks), table, skipped


def list_audio(root: Path) -> tuple[list[Path], Counter]:
    """Regular audio files under `root` (by extension), sorted, relative to `root`; plus the entries
    skipped, by reason (`not_regular_file`, `broken_link`, `missing_audio`, `folder_loop`,
    `unreadable_folder`)."""
    names, _, skipped = _walk_audio(root)
    return [Path(name) for name in names.to_pylist()], skipped


STAT_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")  # what says a file is unchanged since it was digested


def stat_key(info: os.stat_result) -> tuple[int, int, int, int]:
    """A file's STAT_FIELDS: while they are the same, its digest is still good (ctime catches a same-size edit
    whose mtime was put back)."""
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino


def cache_name(folder: str | Path) -> str:
    """A stable file name for what is cached of `folder` (its real path, hashed)."""
    return hashlib.blake2b(os.path.realpath(folder).encode(), digest_size=8).hexdigest()
_BATCH = 1 << 16  # files per step of the digest loops: bounded futures and temporaries


def audio_listing(root: Path, threads: int = 16, cache: Path | None = None) -> tuple[dict, pa.StringArray]:
    """Count, bytes and a digest of the listing of `root`'s audio files and what was skipped; plus the
    listing itself (relative POSIX paths, sorted), which `prepare` resolves wildcard patterns against.

    With a `cache` folder, each file's sampled digest is kept there with its stat (size, mtime, ctime, inode);
    a later listing reads only the files whose stat changed, so a re-run over AudioSet's ≈2M unchanged files
    costs one `stat` each. The digest itself depends only on the files' names and content, never on the cache
    (the same dataset gives the same fingerprint on every machine)."""
    if not root.is_dir():
        return ({"path": str(root), "exists": False, "files": 0, "bytes": 0, "digest": "", "skipped": {}},
                pa.array([], pa.string()))  # fmt: skip
    names, stats, skipped = _walk_audio(root)
    cache_file = _cache_file(cache, root) if cache is not None else None
    digests, reused = _cached_digests(cache_file, names, stats)
    todo = np.flatnonzero(~reused)
    if len(todo):
        fresh = []
        with ThreadPoolExecutor(threads) as pool:
            for start in range(0, len(todo), _BATCH):
                batch = names.take(todo[start : start + _BATCH]).to_pylist()
                fresh.extend(pool.map(lambda name: sampled_digest(root / name), batch))
        digests = pc.replace_with_mask(digests, pa.array(~reused), pa.array(fresh, pa.string()))
        if cache_file is not None:
            _write_cache(cache_file, names, stats, digests)
    listing = hashlib.blake2b(digest_size=16)
    for start in range(0, len(names), _BATCH):  # the digest of "path\tdigest\n" for every file, in order
        lines = pc.binary_join_element_wise(
            pc.binary_join_element_wise(names[start : start + _BATCH], digests[start : start + _BATCH], "\t"), "", "\n"
        )
        if len(lines):
            _, offsets, data = lines.buffers()
            ends = np.frombuffer(offsets, dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
            listing.update(memoryview(data)[int(ends[0]) : int(ends[-1])])
    summary = {"path": str(root), "exists": True, "files": len(names), "bytes": int(stats[:, 0].sum()),
               "digest": listing.hexdigest(), "skipped": dict(sorted(skipped.items()))}  # fmt: skip
    log.info("%s: %d audio files, %d read (new or changed since the cached listing)", root, len(names), len(todo))
    return summary, names


def _cache_file(cache: Path, root: Path) -> Path:
    return Path(cache) / f"listing_{cache_name(root)}.parquet"


def _cached_digests(cache_file: Path | None, names: pa.StringArray, stats: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Each file's digest from the cache where its name and stat match (else null), and which ones matched.
    A missing or unreadable cache file is an empty cache. The cache is read a batch at a time beside the
    listing while both hold the same paths (the usual, nothing-added case); else looked up by path."""
    none = pa.nulls(len(names), pa.string()), np.zeros(len(names), dtype=bool)
    if cache_file is None or not cache_file.is_file() or not len(names):
        return none
    columns = ["path", *STAT_FIELDS, "digest"]
    try:
        cached = pq.ParquetFile(cache_file)
        if cached.metadata.num_rows == len(names):
            found, same, start = [], np.zeros(len(names), dtype=bool), 0
            for batch in cached.iter_batches(batch_size=_BATCH, columns=columns):
                stop = start + batch.num_rows
                if not batch.column(0).equals(names[start:stop]):
                    break
                old = np.stack([batch.column(i + 1).to_numpy() for i in range(len(STAT_FIELDS))], axis=1)
                same[start:stop] = (old == stats[start:stop]).all(axis=1)
                found.append(pc.if_else(pa.array(same[start:stop]), batch.column(len(columns) - 1),
                                        pa.nulls(batch.num_rows, pa.string())))  # fmt: skip
                start = stop
            else:
                return pa.concat_arrays(found), same
        table = pq.read_table(cache_file, columns=columns).combine_chunks()
        at = pc.fill_null(pc.index_in(names, value_set=table.column("path").chunk(0)), -1).to_numpy()
        old = np.stack([table.column(f).chunk(0).to_numpy() for f in STAT_FIELDS], axis=1)
        old_digests = table.column("digest").chunk(0)
    except (OSError, ValueError, KeyError, IndexError, pa.ArrowException) as error:
        log.warning("%s: unreadable listing cache (%s); every file is read", cache_file, error)
        return none
    same = at >= 0
    same[same] = (old[at[same]] == stats[same]).all(axis=1)
    digests = old_digests.take(pa.array(np.where(same, at, 0))) if len(old_digests) else none[0]
    return pc.if_else(pa.array(same), digests, none[0]), same


def _write_cache(cache_file: Path, names: pa.StringArray, stats: np.ndarray, digests: pa.Array) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    columns = {"path": names, **{field: pa.array(stats[:, i]) for i, field in enumerate(STAT_FIELDS)},
               "digest": digests}  # fmt: skip
    with atomic_path(cache_file) as tmp:
        pq.write_table(pa.table(columns), tmp, compression="zstd")


def metadata_fingerprint(meta: Path, audio: Path | None = None) -> dict:
    """Digest of each metadata file (METADATA_EXTENSIONS) of a folder, or of the one file `meta` names.
    When the audio folder lies inside `meta` (a one-root dataset), it is not walked."""
    if meta.is_file():
        return {"path": str(meta), "files": {meta.name: file_digest(meta)}}
    if not meta.is_dir():
        return {"path": str(meta), "files": {}, "exists": False}
    skip = os.path.normpath(audio) if audio is not None and os.path.normpath(audio) != os.path.normpath(meta) else None
    files = []
    for folder, subfolders, names in os.walk(meta):
        subfolders[:] = sorted(d for d in subfolders if os.path.normpath(os.path.join(folder, d)) != skip)
        for name in names:
            path = Path(folder, name)
            if path.suffix.lower() in METADATA_EXTENSIONS and path.is_file():
                files.append(path)
    return {"path": str(meta), "files": {p.relative_to(meta).as_posix(): file_digest(p) for p in sorted(files)}}


def metadata_digests(folder: Path) -> list[str]:
    """The digests of every metadata file under `folder` (what `make_demo` records of each dataset it writes)."""
    return sorted(set(metadata_fingerprint(folder)["files"].values()))


def generated_datasets(fingerprints: dict[str, dict], record: dict[str, list[str]]) -> list[str]:
    """The datasets whose metadata is the demo generator's: a metadata file `scan` fingerprinted (`fingerprints`:
    dataset -> its data/sources/<dataset>.json) byte-identical to one `make_demo` wrote for that dataset (`record`:
    dataset -> `metadata_digests`). Decided by content, wherever the files lie and whatever the folders are named:
    real metadata is never byte-identical to the generator's."""
    def digests(fingerprint: dict) -> set[str]:
        return set((fingerprint.get("meta") or {}).get("files", {}).values())

    return sorted(name for name, found in fingerprints.items() if digests(found) & set(record.get(name, ())))


def read_generated(sources: Path, demo_record: Path, names: list[str]) -> list[str]:
    """`generated_datasets` of the datasets `names` from scan's folder (`<name>.json`) and make_demo's record;
    a missing record or fingerprint counts as not generated."""
    import json

    record = json.loads(demo_record.read_text()).get("metadata_digests", {}) if demo_record.is_file() else {}
    fingerprints = {name: json.loads((sources / f"{name}.json").read_text()) for name in names
                    if (sources / f"{name}.json").is_file()}  # fmt: skip
    return generated_datasets(fingerprints, record)
