"""Stage `scan`: fingerprint each dataset's metadata and audio listing (cheap; runs on every repro).

`prepare@<dataset>` depends on this fingerprint instead of on the dataset's folders, so `dvc status`
never hashes millions of audio files (nor reads a one-root dataset's audio), yet a changed metadata file
or audio folder still re-runs `prepare`. The listing itself is saved too: `prepare` resolves wildcard
audio patterns against it. `--cache` keeps each file's sampled digest beside its stat (a git-ignored scratch
folder, not an output), so a run over an unchanged folder stats each file and reads none: AudioSet's ≈2M files
cost seconds, not the minutes of reading three blocks of each.
DVC runs: python stages/scan.py --out data/sources --cache scratch/scan
          (writes data/sources/<dataset>.json and data/sources/<dataset>.listing.parquet)
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from blat_core.atomic import atomic_path, write_json
from blat_core.data.datasets import joined_datasets
from blat_core.data.prepare import PrepareParams
from blat_core.data.sources import audio_listing, metadata_fingerprint
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("scan")


def fingerprint(name: str, params: PrepareParams, cache: Path | None = None) -> tuple[dict, pa.StringArray]:
    """Own metadata and audio listing, plus the metadata of the datasets it joins by YouTube id; and the
    listing itself. `cache`: the folder of the listings' digest caches (`audio_listing`)."""
    source = params.source(name)
    audio, files = audio_listing(source.audio_dir, cache=cache)
    result = {
        "dataset": name,
        "meta": metadata_fingerprint(source.fingerprinted, source.audio_dir),
        "audio": audio,
        "joins": {
            other: metadata_fingerprint(params.source(other).meta_dir, params.source(other).audio_dir)
            for other in joined_datasets(name, params.datasets)
        },
    }
    return result, files


def write_listing(path: Path, files: pa.StringArray) -> None:
    pq.write_table(pa.table({"path": files}), path, compression="zstd")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for one <dataset>.json per dataset")
    parser.add_argument("--cache", type=Path, help="scratch folder for the per-file digest cache (not an output)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "prepare", PrepareParams)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        for name in params.datasets:
            started = time.perf_counter()
            result, files = fingerprint(name, params, args.cache)
            write_json(tmp / f"{name}.json", result)
            write_listing(tmp / f"{name}.listing.parquet", files)
            audio = result["audio"]
            log.info("%s: %d audio files (%.1f MB) listed in %.2f s", name, audio["files"], audio["bytes"] / 1e6,
                     time.perf_counter() - started)  # fmt: skip
            if audio["skipped"]:
                log.warning("%s: skipped in %s (not regular audio files): %s", name, audio["path"], audio["skipped"])


if __name__ == "__main__":
    run_main(main)
