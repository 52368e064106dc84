"""Cheap fingerprints of a dataset's inputs, so `dvc status` never hashes millions of audio files.

The metadata files are hashed whole (they are small). The audio folder is summarised by a listing:
every audio file's relative path, size, and a hash of three 4 KiB blocks (start, middle, end).
A file added, removed, truncated or re-encoded changes the listing; an edit that touches none of
the sampled blocks and keeps the size does not (force that case with `dvc repro -f prepare@<name>`).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus"}
BLOCK = 4096


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


def list_audio(root: Path) -> list[Path]:
    """Audio files under `root` (by extension), sorted, as paths relative to `root`."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.append(Path(folder, name).relative_to(root))
    return sorted(found)


def audio_listing(root: Path, threads: int = 16) -> dict:
    """Count, bytes and a digest of the listing of `root`'s audio files."""
    if not root.is_dir():
        return {"path": str(root), "exists": False, "files": 0, "bytes": 0, "digest": ""}
    files = list_audio(root)
    with ThreadPoolExecutor(threads) as pool:
        digests = list(pool.map(lambda rel: sampled_digest(root / rel), files, chunksize=256))
    listing = hashlib.blake2b(digest_size=16)
    total = 0
    for rel, digest in zip(files, digests, strict=True):
        listing.update(f"{rel.as_posix()}\t{digest}\n".encode())
        total += (root / rel).stat().st_size
    return {"path": str(root), "exists": True, "files": len(files), "bytes": total, "digest": listing.hexdigest()}


def metadata_fingerprint(meta: Path) -> dict:
    """Digest of each metadata file of a folder (or of the one file `meta` names)."""
    if meta.is_file():
        return {"path": str(meta), "files": {meta.name: file_digest(meta)}}
    if not meta.is_dir():
        return {"path": str(meta), "files": {}, "exists": False}
    files = sorted(p for p in meta.rglob("*") if p.is_file() and p.suffix.lower() not in AUDIO_EXTENSIONS)
    return {"path": str(meta), "files": {p.relative_to(meta).as_posix(): file_digest(p) for p in files}}
