"""The captioned datasets stage 2 and the real-only baseline train on (`pretrain.real_datasets`), as one small file.

`dvc.yaml` cannot give a stage a list of deps that params choose, so the `real_captions` stage depends on the
whole `data/prepared` folder and writes `data/real_captions.json`: each chosen dataset's folder, a digest of
every file in it and its training clips and captions. The pre-training stages depend on that file alone: they
re-run when a chosen dataset changes or the list does, and not when an evaluation-only set is added or changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.data.prepared import PreparedDataset
from blat_core.data.sources import cache_name, stat_key
from blat_core.params import ParamsError

KEY = "pretrain.real_datasets"


def folder_digest(folder: Path, cache: Path | None = None) -> str:
    """blake2b over every file of a prepared folder (relative name and content), in name order.

    With a `cache` folder (scratch, not an output), the digest is kept beside every file's stat (name, size,
    mtime, ctime, inode); while none of them changed it is reused without reading a byte, so a re-run over
    AudioCaps + Clotho + MACS at paper scale (≈45 GB of shards) costs a few hundred `stat`s, not a full read.
    The value is the same with or without the cache."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stats = [[p.relative_to(folder).as_posix(), *stat_key(p.stat())] for p in files]
    record = Path(cache) / f"{cache_name(folder)}.json" if cache is not None else None
    if record is not None and record.is_file():
        try:
            known = json.loads(record.read_text())
            if known.get("files") == stats and isinstance(known.get("digest"), str):
                return known["digest"]
        except (json.JSONDecodeError, AttributeError):
            pass
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0".encode())
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    if record is not None:
        write_json(record, {"folder": str(folder), "files": stats, "digest": digest.hexdigest()})
    return digest.hexdigest()


def manifest_digest(folder: Path) -> str:
    return hashlib.blake2b((folder / "manifest.parquet").read_bytes(), digest_size=16).hexdigest()


def build_pool(names: list[str], prepared_root: Path, cache: Path | None = None) -> dict:
    """{"datasets": [{name, folder, digest, manifest_digest, training_clips, training_captions}]}; a dataset
    that is not prepared or has no trainable captioned clip is a `ParamsError` naming the key."""
    if not names:
        raise ParamsError(f"{KEY} is empty: name at least one captioned dataset (e.g. audiocaps)")
    if len(set(names)) != len(names):
        raise ParamsError(f"{KEY} names a dataset twice: {names}")
    out = []
    for i, name in enumerate(names):
        folder = Path(prepared_root) / name
        if not (folder / "manifest.parquet").is_file():
            raise ParamsError(f"{KEY}[{i}]: {name!r} is not prepared under {prepared_root}; it must be a dataset of "
                              f"prepare.datasets (`dvc repro prepare@{name}`)")  # fmt: skip
        rows = list(PreparedDataset(folder).training_rows())
        captions = sum(len(r["captions"]) for r in rows)
        if not captions:
            raise ParamsError(f"{KEY}[{i}]: {name!r} has no trainable captioned clip (a labels set, or every clip in "
                              "val/test); stage 2 trains on captions")  # fmt: skip
        out.append({"name": name, "folder": folder.as_posix(), "digest": folder_digest(folder, cache),
                    "manifest_digest": manifest_digest(folder), "training_clips": len(rows),
                    "training_captions": captions})  # fmt: skip
    return {"datasets": out}


def pool_folders(path: Path) -> list[Path]:
    """The prepared folders a pool file names; each manifest must still be the one the pool saw."""
    pool = json.loads(Path(path).read_text())
    folders = []
    for entry in pool["datasets"]:
        folder = Path(entry["folder"])
        if not (folder / "manifest.parquet").is_file() or manifest_digest(folder) != entry["manifest_digest"]:
            raise ValueError(f"{path}: {folder} changed since the pool was written; run `dvc repro real_captions`")
        folders.append(folder)
    return folders
