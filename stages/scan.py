"""Stage `scan`: fingerprint each dataset's metadata and audio listing (cheap; runs on every repro).

`prepare@<dataset>` depends on this fingerprint instead of on the audio folder, so `dvc status`
never hashes millions of audio files, yet a changed audio folder still re-runs `prepare`.
DVC runs: python stages/scan.py --out data/sources   (writes data/sources/<dataset>.json)
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from blat_core.atomic import atomic_path, write_json
from blat_core.data.datasets import YOUTUBE
from blat_core.data.prepare import PrepareParams
from blat_core.data.sources import audio_listing, metadata_fingerprint
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("scan")


def fingerprint(name: str, params: PrepareParams) -> dict:
    """Own metadata and audio listing, plus the metadata of the datasets it joins by YouTube id."""
    source = params.source(name)
    joins = [other for other in YOUTUBE if other != name and other in params.datasets]
    return {
        "dataset": name,
        "meta": metadata_fingerprint(Path(source.meta)),
        "audio": audio_listing(Path(source.audio)),
        "joins": {
            other: metadata_fingerprint(Path(params.datasets[other].meta))
            for other in (joins if name in YOUTUBE else [])
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for one <dataset>.json per dataset")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "prepare", PrepareParams)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        for name in params.datasets:
            started = time.perf_counter()
            result = fingerprint(name, params)
            write_json(tmp / f"{name}.json", result)
            audio = result["audio"]
            log.info("%s: %d audio files (%.1f MB) listed in %.2f s", name, audio["files"], audio["bytes"] / 1e6,
                     time.perf_counter() - started)  # fmt: skip
            if audio["skipped"]:
                log.warning("%s: skipped in %s (not regular audio files): %s", name, audio["path"], audio["skipped"])


if __name__ == "__main__":
    run_main(main)
