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
import os
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def list_audio(root: Path) -> tuple[list[Path], Counter]:
    """Regular audio files under `root` (by extension), sorted, relative to `root`; plus the entries
    skipped, by reason (`not_regular_file`, `broken_link`, `missing_audio`, `folder_loop`,
    `unreadable_folder`)."""
    found, skipped, visited = [], Counter(), set()

    def unreadable(error: OSError) -> None:
        skipped["unreadable_folder"] += 1

    for folder, subfolders, names in os.walk(root, onerror=unreadable, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in visited:  # reached again through a link (or a link loop)
            subfolders[:] = []
            skipped["folder_loop"] += 1
            continue
        visited.add((info.st_dev, info.st_ino))
        subfolders.sort()
        for name in names:
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                problem = regular_file_problem(os.path.join(folder, name))
                if problem:
                    skipped[problem[0]] += 1
                else:
                    found.append(Path(folder, name).relative_to(root))
    return sorted(found), skipped


def audio_listing(root: Path, threads: int = 16) -> tuple[dict, list[str]]:
    """Count, bytes and a digest of the listing of `root`'s audio files and what was skipped; plus the
    listing itself (relative POSIX paths, sorted), which `prepare` resolves wildcard patterns against."""
    if not root.is_dir():
        return {"path": str(root), "exists": False, "files": 0, "bytes": 0, "digest": "", "skipped": {}}, []
    files, skipped = list_audio(root)
    with ThreadPoolExecutor(threads) as pool:
        digests = list(pool.map(lambda rel: sampled_digest(root / rel), files, chunksize=256))
    listing = hashlib.blake2b(digest_size=16)
    total = 0
    for rel, digest in zip(files, digests, strict=True):
        listing.update(f"{rel.as_posix()}\t{digest}\n".encode())
        total += (root / rel).stat().st_size
    summary = {"path": str(root), "exists": True, "files": len(files), "bytes": total, "digest": listing.hexdigest(),
               "skipped": dict(sorted(skipped.items()))}  # fmt: skip
    return summary, [rel.as_posix() for rel in files]


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
