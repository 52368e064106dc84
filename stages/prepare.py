"""Stage `prepare@<dataset>`: real metadata format -> manifest.parquet + int16 waveform shards.

DVC runs: python stages/prepare.py <dataset> --source data/sources/<dataset>.json
          --listing data/sources/<dataset>.listing.parquet --out data/prepared/<dataset>
          --metrics metrics/prepare_<dataset>.json --scratch scratch/prepare_<dataset>

With `--scratch`, finished shards are kept there as they are written: a run that was killed resumes after
its last whole shard when it is started again with the same inputs (params, scan fingerprint, listing and
code), and writes exactly what an uninterrupted run writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import pyarrow.parquet as pq

from blat_core.atomic import atomic_path, write_json
from blat_core.code_closure import ROOT, import_closure
from blat_core.data.datasets.common import MetadataError
from blat_core.data.ingest import Progress
from blat_core.data.prepare import PrepareError, PrepareParams, prepare_dataset
from blat_core.params import load_section
from blat_core.runtime import num_workers, run_main, setup_logging

log = logging.getLogger("prepare")


def resume_key(args: argparse.Namespace, params: PrepareParams) -> str:
    """What a resumed run must share with the killed one: the dataset's params, the scan's fingerprint and
    listing, and the code this stage runs."""
    digest = hashlib.blake2b(digest_size=16)
    section = {k: v for k, v in dataclasses.asdict(params).items() if k != "datasets"}
    section["dataset"] = dataclasses.asdict(params.datasets[args.dataset]) if args.dataset in params.datasets else {}
    digest.update(json.dumps([args.dataset, section], sort_keys=True).encode())
    files = [args.source, *([args.listing] if args.listing else [])]
    files += [ROOT / p for p in sorted(import_closure([Path(__file__)]))]
    for path in files:
        digest.update(f"{path}\0".encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--source", type=Path, required=True, help="fingerprint written by scan")
    parser.add_argument("--listing", type=Path, help="the audio folder's listing written by scan (Parquet)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, help="folder for the finished shards of a run that may be resumed")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "prepare", PrepareParams)
    fingerprint = json.loads(args.source.read_text())
    # Joined datasets' metadata (AudioSet tags, evaluation ids) as the scan saw it.
    joins = {name: Path(info["path"]) for name, info in fingerprint["joins"].items()}
    if joins:
        joins[args.dataset] = params.source(args.dataset).meta_dir
    listing = pq.read_table(args.listing, columns=["path"]).column("path").to_pylist() if args.listing else None
    try:
        with atomic_path(args.out) as tmp:
            tmp.mkdir()
            progress = Progress(args.scratch, resume_key(args, params)) if args.scratch else None
            metrics = prepare_dataset(args.dataset, params, joins, tmp, num_workers(), listing, progress)
    except (PrepareError, MetadataError) as error:
        raise SystemExit(f"prepare@{args.dataset} failed: {error}") from None
    write_json(args.metrics, {"prepare": {args.dataset: metrics}})
    log.info(
        "%s: %d clips kept, %d skipped %s, %d flagged by the leakage guard",
        args.dataset,
        metrics["clips"],
        metrics["skipped_total"],
        metrics["skipped"],
        metrics["leakage"]["flagged_clips"],
    )


if __name__ == "__main__":
    run_main(main)
