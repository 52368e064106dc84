"""Scale rehearsal: the data path's costs at growing sizes, measured (issue 39).

    python benchmarks/scale.py [--sizes 10000 50000 250000] [--metadata-rows 2000000] [--work DIR]
    python benchmarks/scale.py --tiny      # seconds: the test suite runs this so the script keeps working

Per size it builds AudioSet in the PANNs download layout (metadata/*_segments.csv + audios/{balanced_train,eval}_
segments/ and 41 unbalanced part folders; 0.2 s int16 WAV clips at prepare.sample_rate, so per-clip costs show),
then runs each operation the stages run in its own process and records wall time, time per item, peak RSS (the
process's `ru_maxrss`, from `wait4`) and the most open descriptors it held. The metadata-only operations run
once more on a manifest of `--metadata-rows` rows without audio (AudioSet's 2.08M). Writes
benchmarks/results/scale_<date>.json and prints a table with, per operation, how the time per item and the
peak RSS grow from the smallest size to the largest.

A 10 s clip is 50x the samples of these: the per-clip costs that read or decode audio (prepare, read, digest)
grow about that much; the metadata operations do not change.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's blat_core, whatever the environment has installed
RATE = 32000  # the paper profile's prepare.sample_rate: PANNs' AudioSet is already at this rate
CLASSES = 527
PARTS = 41  # PANNs' unbalanced_train_segments_part00..40
CLIPS_PER_SHARD = 1700  # AudioSet at paper scale: ≈2.08M clips in ≈1,240 shards
AUDIO_OPS = ["scan_cold", "scan_noop", "prepare", "open", "read_all", "training_ids", "labelled", "selection",
             "sampler", "digest_cold", "digest_warm"]  # fmt: skip
METADATA_OPS = ["open", "training_ids", "labelled", "selection", "sampler"]


# ---------------------------------------------------------------- synthetic data
def youtube_ids(count: int, seed: int) -> list[str]:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    chars = alphabet[np.random.default_rng(seed).integers(0, len(alphabet), size=(count, 11))]
    return ["".join(row) for row in chars]


def split_of(i: int, count: int) -> str:
    """AudioSet's proportions: eval and balanced_train ≈ 1 % each, the rest unbalanced."""
    small = max(1, count // 100)
    return "eval" if i < small else "balanced_train" if i < 2 * small else "unbalanced_train"


def build_audioset(root: Path, clips: int, seconds: float, seed: int = 0) -> None:
    """AudioSet as the PANNs download scripts lay it out, with `clips` clips of `seconds` at RATE."""
    import soundfile as sf

    meta = root / "metadata"
    meta.mkdir(parents=True)
    with (meta / "class_labels_indices.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows([i, f"/m/scale{i:03d}", f"Class {i}"] for i in range(CLASSES))
    rng = np.random.default_rng(seed)
    wave = (rng.uniform(-0.3, 0.3, int(RATE * seconds)) * 32767).astype(np.int16)
    rows: dict[str, list[str]] = {"eval": [], "balanced_train": [], "unbalanced_train": []}
    for i, ytid in enumerate(youtube_ids(clips, seed)):
        split = split_of(i, clips)
        folder = root / "audios" / f"{split}_segments"
        if split == "unbalanced_train":
            folder = folder / f"unbalanced_train_segments_part{i % PARTS:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"Y{ytid}.wav", np.roll(wave, i), RATE, subtype="PCM_16")
        labels = ",".join(f"/m/scale{c:03d}" for c in sorted({i % CLASSES, (i * 7 + 3) % CLASSES}))
        rows[split].append(f'{ytid}, 30.000, {30 + seconds:.3f}, "{labels}"\n')
    for split, lines in rows.items():
        header = (f"# Segments csv (scale rehearsal)\n# num_ytids={len(lines)}\n"
                  "# YTID, start_seconds, end_seconds, positive_labels\n")  # fmt: skip
        (meta / f"{split}_segments.csv").write_text(header + "".join(lines))


def build_metadata_only(folder: Path, rows: int, classes_from: Path | None = None) -> None:
    """A prepared AudioSet manifest of `rows` rows and no audio (the metadata paths at paper size); its classes.csv
    copied from a prepared set (or written as prepare writes it for build_audioset's classes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from blat_core.data.prepare import MANIFEST_SCHEMA

    folder.mkdir(parents=True)
    if classes_from is not None:
        shutil.copy(classes_from / "classes.csv", folder / "classes.csv")
    else:
        lines = [f"{i},/m/scale{i:03d},Class {i}\n" for i in range(CLASSES)]
        (folder / "classes.csv").write_text("index,mid,display_name\n" + "".join(lines))
    ids = youtube_ids(rows, 1)
    splits = [split_of(i, rows) for i in range(rows)]
    mids = [[f"/m/scale{c:03d}" for c in sorted({i % CLASSES, (i * 7 + 3) % CLASSES})] for i in range(rows)]
    names = [[f"Class {m[9:].lstrip('0') or '0'}" for m in row] for row in mids]
    per_shard = CLIPS_PER_SHARD
    columns = {
        "audio_id": [f"Y{y}" for y in ids], "split": splits, "fold": [None] * rows,
        "source_path": [f"{s}_segments/Y{y}.wav" for s, y in zip(splits, ids, strict=True)], "youtube_id": ids,
        "duration": [10.0] * rows, "tag_mids": mids, "tag_names": names, "captions": [[]] * rows,
        "labels": [[]] * rows, "trainable": [s != "eval" for s in splits], "eval_overlap": [[]] * rows,
        "shard": [i // per_shard for i in range(rows)], "offset": [(i % per_shard) * 320000 for i in range(rows)],
        "num_samples": [320000] * rows,
    }  # fmt: skip
    table = pa.table(columns, schema=MANIFEST_SCHEMA).replace_schema_metadata(
        {"blat.dataset": "audioset", "blat.sample_rate": str(RATE)}
    )
    pq.write_table(table, folder / "manifest.parquet", compression="zstd")


# ---------------------------------------------------------------- one operation, in its own process
def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_op(op: str, data: Path, work: Path) -> dict:
    """Run `op` on the data under `data`; {"items", "seconds", "max_fds", RSS figures} (time excludes imports)."""
    result = _run_op(op, data, work)
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result | {"peak_rss_mb": round(max(self_peak, children) / 1024, 1)}


def _run_op(op: str, data: Path, work: Path) -> dict:
    import blat_core.data.labelled  # noqa: F401  (imports before the clock starts)
    from blat_core.bootstrap.synthesis import select_clips
    from blat_core.data.labelled import labelled_clips
    from blat_core.data.prepared import PreparedDataset
    from blat_core.data.real_captions import folder_digest
    from blat_core.data.sources import audio_listing
    from blat_core.train.sampling import epoch_batches

    prepared = data / "prepared"
    most = open_descriptors()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the interpreter and its imports
    started = time.perf_counter()
    if op in ("scan_cold", "scan_noop"):
        summary, _ = audio_listing(data / "audioset" / "audios", cache=work / "scan_cache")
        items = summary["files"]
    elif op == "prepare":
        items = _prepare(data, prepared, work)
    elif op == "open":
        items = len(PreparedDataset(prepared))
    elif op == "read_all":
        dataset = PreparedDataset(prepared)
        ids = list(dataset.ids)
        np.random.default_rng(0).shuffle(ids)
        for i, audio_id in enumerate(ids):
            dataset.waveform(audio_id)
            if i % 1000 == 0:
                most = max(most, open_descriptors())
        items = len(ids)
    elif op == "training_ids":
        items = len(PreparedDataset(prepared).training_ids())
    elif op == "labelled":
        dataset = PreparedDataset(prepared)  # as the linear probe and fine-tune read it: targets for used clips
        labelled_clips(dataset, used=True)
        items = len(dataset)
    elif op == "selection":
        audioset = PreparedDataset(prepared)

        class Features:  # select_clips reads only the ids that have frame features: all of them here
            ids = audioset.ids

        selection = select_clips(audioset, audioset, Features(), ["balanced_train", "unbalanced_train"])
        items = len(selection.audio_ids) + sum(selection.dropped.values())
    elif op == "sampler":
        count = len(PreparedDataset(prepared))
        steps = max(200, count // 64)  # one epoch: its single permutation amortised as in training
        started = time.perf_counter()  # the per-step cost, not opening the set
        for step in range(steps):
            epoch_batches(0, step, count, 64)
        return {"items": steps, "seconds": time.perf_counter() - started, "max_fds": max(most, open_descriptors()),
                "unit": "step", "set_size": count, "rss_before_mb": round(before, 1)}  # fmt: skip
    elif op in ("digest_cold", "digest_warm"):
        import pyarrow.parquet as pq

        folder_digest(prepared, work / "digest_cache")
        items = pq.ParquetFile(prepared / "manifest.parquet").metadata.num_rows  # clips, as for the other ops
    else:
        raise SystemExit(f"unknown operation {op!r}")
    return {"items": items, "seconds": time.perf_counter() - started, "max_fds": max(most, open_descriptors()),
            "rss_before_mb": round(before, 1)}  # fmt: skip


def _prepare(data: Path, out: Path, work: Path) -> int:
    import pyarrow.parquet as pq

    from blat_core.data.prepare import PrepareParams, prepare_dataset
    from blat_core.params import from_dict

    root = data / "audioset"
    shard_mb = max(1, round(CLIPS_PER_SHARD * _clip_bytes(root) / 2**20))  # the paper's clips per shard
    section = {"sample_rate": RATE, "shard_size_mb": shard_mb, "max_bad_fraction": 0.2, "silence_dbfs": -80.0,
               "min_seconds": 0.05, "max_seconds": 11.0,
               "datasets": {"audioset": {"root": str(root), "meta": "metadata", "audio": "audios",
                                         "audio_pattern": "{split}_segments/**/Y{youtube_id}.*"}}}  # fmt: skip
    params = from_dict(PrepareParams, section, "prepare")
    listing = None
    cached = sorted((work / "scan_cache").glob("*.parquet")) if (work / "scan_cache").is_dir() else []
    if cached:
        listing = pq.read_table(cached[0], columns=["path"]).column("path").to_pylist()
    out.mkdir()
    metrics = prepare_dataset("audioset", params, {}, out, workers=os.cpu_count() or 1, listing=listing)
    return metrics["clips"]


def _clip_bytes(root: Path) -> int:
    first = next((root / "audios" / "eval_segments").iterdir())
    return first.stat().st_size - 44  # the samples of one clip, without the WAV header


def measure(op: str, data: Path, work: Path, timeout: float, in_process: bool = False) -> dict:
    """Run `op` in a child process of its own (so its peak RSS is its own); add the wall time. `in_process`
    (tiny mode: saves a torch import per operation) runs it here, so its RSS figures are this process's."""
    command = [sys.executable, __file__, "--op", op, "--data", str(data), "--work", str(work)]
    started = time.perf_counter()
    if in_process:
        result = run_op(op, data, work) | {"op": op, "wall_s": round(time.perf_counter() - started, 3),
                                            "in_process": True}  # fmt: skip
        result["us_per_item"] = round(result["seconds"] / max(result["items"], 1) * 1e6, 2)
        return result
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"op": op, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"op": op, "error": lines[-1] if lines else f"exit {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update({"op": op, "wall_s": round(time.perf_counter() - started, 3)})
    result["us_per_item"] = round(result["seconds"] / max(result["items"], 1) * 1e6, 2)
    return result


# ---------------------------------------------------------------- the rehearsal
def rehearse(sizes: list[int], metadata_rows: int, seconds: float, work: Path, timeout: float,
             in_process: bool = False) -> dict:  # fmt: skip
    """Every operation at every size (`in_process`: all but the first in this process)."""
    runs = []
    for size in sizes:
        data = work / f"n{size}"
        started = time.perf_counter()
        build_audioset(data / "audioset", size, seconds)
        print(f"built {size} clips in {time.perf_counter() - started:.1f} s", flush=True)
        for op in AUDIO_OPS:
            result = measure(op, data, data, timeout, in_process and bool(runs)) | {"size": size}
            runs.append(result)
            print(json.dumps(result), flush=True)
        classes = data / "prepared"
        if size != sizes[-1]:
            shutil.rmtree(data / "audioset")
    if metadata_rows:
        data = work / f"meta{metadata_rows}"
        # In a child: a child's ru_maxrss starts at its parent's RSS at fork, so the parent stays small.
        subprocess.run([sys.executable, __file__, "--op", "build_metadata", "--data", str(data), "--work", str(classes),
                        "--rows", str(metadata_rows)], cwd=ROOT, check=True)  # fmt: skip
        for op in METADATA_OPS:
            result = measure(op, data, data, timeout, in_process) | {"size": metadata_rows, "metadata_only": True}
            runs.append(result)
            print(json.dumps(result), flush=True)
    return {"sizes": sizes, "metadata_rows": metadata_rows, "clip_seconds": seconds, "runs": runs,
            "growth": growth(runs, sizes)}  # fmt: skip


def growth(runs: list[dict], sizes: list[int]) -> dict:
    """Per operation: time per item at the largest size over the smallest, and peak RSS growth per 1,000 items
    (a least-squares slope over the sizes of the peak above the interpreter's own), from the runs with audio."""
    out = {}
    for op in AUDIO_OPS:
        points = [(r["size"], r) for r in runs if r["op"] == op and "error" not in r and not r.get("metadata_only")]
        if len(points) < 2:
            continue
        points.sort(key=lambda p: p[0])
        first, last = points[0][1], points[-1][1]
        sizes_used = np.array([p[0] for p in points], dtype=float)
        rss = np.array([p[1]["peak_rss_mb"] - p[1]["rss_before_mb"] for p in points])
        slope = float(np.polyfit(sizes_used, rss, 1)[0]) * 1000 if len(points) > 1 else 0.0
        out[op] = {"per_item_ratio": round(last["us_per_item"] / max(first["us_per_item"], 1e-9), 3),
                   "rss_mb_per_1k_items": round(slope, 3), "max_fds": max(p[1]["max_fds"] for p in points)}  # fmt: skip
    return out


def table(result: dict) -> str:
    lines = [f"{'operation':<14}{'size':>10}{'items':>10}{'s':>9}{'µs/item':>11}{'extra MB':>9}{'fds':>5}"]
    for r in result["runs"]:
        if "error" in r:
            lines.append(f"{r['op']:<14}{r['size']:>10}  {r['error']}")
            continue
        size = f"{r['size']}{'m' if r.get('metadata_only') else ''}"
        lines.append(f"{r['op']:<14}{size:>10}{r['items']:>10}{r['seconds']:>9.2f}{r['us_per_item']:>11.1f}"
                     f"{r['peak_rss_mb'] - r['rss_before_mb']:>9.0f}{r['max_fds']:>5}")  # fmt: skip
    lines.append("")
    lines.append(f"{'operation':<14}{'per-item ratio':>15}{'MB per 1k':>11}{'max fds':>9}  (largest / smallest size)")
    for op, g in result["growth"].items():
        lines.append(f"{op:<14}{g['per_item_ratio']:>15.2f}{g['rss_mb_per_1k_items']:>11.2f}{g['max_fds']:>9}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 250_000])
    parser.add_argument("--metadata-rows", type=int, default=2_000_000)
    parser.add_argument("--clip-seconds", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one operation may take")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/scale_<date>.json)")
    parser.add_argument("--tiny", action="store_true", help="sizes 200 and 400, 1,000 metadata rows, every "
                        "operation but the first in this process (a smoke test: its RSS means nothing)")  # fmt: skip
    parser.add_argument("--op", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op == "build_metadata":
        build_metadata_only(args.data / "prepared", args.rows, args.work)
        return
    if args.op:
        print(json.dumps(run_op(args.op, args.data, args.work)))
        return
    if args.tiny:
        args.sizes, args.metadata_rows = [200, 400], 1000
    out = args.out or ROOT / "benchmarks" / "results" / f"scale_{datetime.date.today().isoformat()}.json"
    work = args.work or Path(tempfile.mkdtemp(prefix="blat_scale_"))
    try:
        result = rehearse(sorted(args.sizes), args.metadata_rows, args.clip_seconds, work, args.timeout, args.tiny)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
