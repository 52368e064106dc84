"""Stage `make_demo`: generate the deterministic demo corpus in the eight datasets' real formats.

DVC runs: python stages/make_demo.py --out data/demo --record data/demo.json

`--record` lists, per dataset, the digests of the metadata files written: what tells the report (and a model
card) that a dataset is this corpus, by content, wherever its files were copied (`sources.generated_datasets`).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from blat_core.atomic import atomic_path, write_json
from blat_core.data.demo.corpus import DemoParams, build_corpus
from blat_core.data.sources import metadata_digests
from blat_core.params import load_section
from blat_core.runtime import num_workers, run_main, setup_logging

log = logging.getLogger("make_demo")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--record", type=Path, required=True, help="JSON of each dataset's metadata digests")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "demo", DemoParams)
    started = time.perf_counter()
    with atomic_path(args.out) as tmp:
        counts = build_corpus(params, tmp, num_workers())
        record = {name: metadata_digests(tmp / name) for name in sorted(counts)}
    write_json(args.record, {"generator": "make_demo", "metadata_digests": record})
    log.info("wrote %s in %.1f s: %s", args.out, time.perf_counter() - started, counts)


if __name__ == "__main__":
    run_main(main)
