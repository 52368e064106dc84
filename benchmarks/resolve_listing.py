"""Benchmark: resolving AudioSet-size metadata against a listing with a wildcard pattern.

    python benchmarks/resolve_listing.py [--files 2000000]

Generates a listing shaped like the PANNs download (balanced/eval folders and the unbalanced set in 41
part folders, 1 in 20 clips as .flac) and one metadata row per file (the pattern
`{split}_segments/**/Y{youtube_id}.*`), then times what `prepare` does: read the listing Parquet the scan
wrote, build the index, resolve every row. Prints each step's seconds and the rows/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from blat_core.data.resolve import ListingIndex

PATTERN = "{split}_segments/**/Y{youtube_id}.*"


def synthetic(files: int, seed: int = 0) -> tuple[list[str], list[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    ids = ["".join(chars) for chars in alphabet[rng.integers(0, len(alphabet), size=(files, 11))]]
    listing, rows = [], []
    for i, ytid in enumerate(ids):
        split = "eval" if i < 20_000 else "balanced_train" if i < 42_000 else "unbalanced_train"
        folder = f"{split}_segments"
        if split == "unbalanced_train":
            folder += f"/unbalanced_train_segments_part{i % 41:02d}"
        listing.append(f"{folder}/Y{ytid}.{'flac' if i % 20 == 0 else 'wav'}")
        rows.append((split, ytid))
    return sorted(listing), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    listing, rows = synthetic(args.files)
    print(f"generated {len(listing):,} files / {len(rows):,} rows in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "listing.parquet"
        pq.write_table(pa.table({"path": pa.array(listing, pa.string())}), path, compression="zstd")
        size = path.stat().st_size

        t0 = time.perf_counter()
        files = pq.read_table(path, columns=["path"]).column("path").to_pylist()
        t1 = time.perf_counter()
        index = ListingIndex(files)
        wanted = [PATTERN.format(split=split, youtube_id=ytid) for split, ytid in rows]
        t2 = time.perf_counter()
        found = [index.matches(w) for w in wanted]
        t3 = time.perf_counter()
    resolved = sum(len(f) == 1 for f in found)
    print(f"listing Parquet: {size / 1e6:.1f} MB, read in {t1 - t0:.2f} s")
    print(f"index + patterns formatted: {t2 - t1:.2f} s (the index itself is built on the first lookup)")
    print(f"resolved {resolved:,}/{len(rows):,} rows in {t3 - t2:.2f} s ({len(rows) / (t3 - t2):,.0f} rows/s)")
    print(f"total (read + resolve): {t3 - t0:.2f} s")
    if resolved != len(rows):
        raise SystemExit("some rows did not resolve to exactly one file")


if __name__ == "__main__":
    main()
