"""Paper-scale behaviour in miniature (issue 39): what grows with the data must grow as it should.

Each test builds the smallest input that shows the growth (hundreds of shards, tens of thousands of clips)
instead of the paper's 1,240 shards and 2.08M clips."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from blat_core.data.prepare import MANIFEST_SCHEMA
from blat_core.data.shards import ShardWriter

ROOT = Path(__file__).resolve().parents[1]


def many_shard_set(folder: Path, clips: int) -> Path:
    """A prepared folder whose every clip sits in its own shard (`clips` shards), as prepare writes it."""
    folder.mkdir(parents=True)
    writer = ShardWriter(folder, 1, {"sample_rate": 16000})
    records = []
    for i in range(clips):
        wave = np.full(4, i, dtype=np.int16)
        shard, offset = writer.add(f"clip{i:05d}", wave)
        records.append({"audio_id": f"clip{i:05d}", "split": "train", "fold": 0, "source_path": f"{i}.wav",
                        "youtube_id": "", "duration": 4 / 16000, "tag_mids": [], "tag_names": [], "captions": ["a"],
                        "labels": [], "trainable": True, "eval_overlap": [], "shard": shard, "offset": offset,
                        "num_samples": 4})  # fmt: skip
    writer.flush()
    columns = {f.name: [r[f.name] for r in records] for f in MANIFEST_SCHEMA}
    table = pa.table(columns, schema=MANIFEST_SCHEMA).replace_schema_metadata({"blat.dataset": "toy",
                                                                               "blat.sample_rate": "16000"})
    pq.write_table(table, folder / "manifest.parquet")
    return folder


def test_reading_every_shard_holds_a_bounded_number_of_open_files(tmp_path):
    """Issue 39 §2.1: 300 shards read clip by clip in one process under a 64-descriptor limit (AudioSet's ≈1,240
    shards against the usual 1,024): handles are bounded, so no `Too many open files`."""
    folder = many_shard_set(tmp_path / "prepared", 300)
    script = textwrap.dedent(f"""
        import os, resource
        import numpy as np
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        from blat_core.data.prepared import PreparedDataset
        data = PreparedDataset({str(folder)!r})
        most = 0
        for i, audio_id in enumerate(data.ids):
            assert np.all(data.waveform(audio_id) == i), audio_id
            most = max(most, len(os.listdir("/proc/self/fd")))
        for audio_id in data.ids[::-7]:  # back again: evicted shards reopen
            data.waveform(audio_id)
        print("most open", most)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) < 48


def test_a_shard_is_opened_as_hdf5_once_whatever_the_reads_evict(tmp_path, monkeypatch):
    """Random reads across more shards than stay open cost an HDF5 open per evicted shard (≈1.7x the time per clip
    at 147 shards than at 6): the byte offset of a shard's contiguous waveform is found once, and later reads are
    one pread on a plain descriptor. The samples are those h5py reads."""
    import h5py

    from blat_core.data import shards
    from blat_core.data.prepared import PreparedDataset

    folder = many_shard_set(tmp_path / "prepared", 60)
    opened = []
    original = h5py.File
    monkeypatch.setattr(shards.h5py, "File", lambda path, *a, **k: opened.append(Path(path).name) or original(
        path, *a, **k))  # fmt: skip
    monkeypatch.setattr(shards, "DESCRIPTORS", shards.DescriptorPool(limit=4))
    data = PreparedDataset(folder)
    order = [*data.ids, *data.ids[::-1], *data.ids[::7]]
    waves = [data.waveform(audio_id) for audio_id in order]
    assert sorted(opened) == sorted(set(opened)) and len(opened) == 60  # each shard once, for its layout
    assert shards.DESCRIPTORS.open_count == 4
    for audio_id, wave in zip(order, waves, strict=True):
        row = data.row(audio_id)
        with original(folder / shards.shard_name(row["shard"]), "r") as handle:
            expected = handle["waveform"][row["offset"] : row["offset"] + row["num_samples"]]
        assert wave.dtype == expected.dtype and np.array_equal(wave, expected) and wave.flags.writeable


def test_shard_writer_add_is_constant_time():
    """Issue 39 §2.4: the offset of a clip is O(1) to find: 60,000 one-sample clips into one shard take well
    under a second (summing the queue on every add took minutes)."""
    writer = ShardWriter(Path("/nonexistent"), 2**40, {})
    started = time.perf_counter()
    for i in range(60_000):
        _, offset = writer.add(str(i), np.zeros(1, dtype=np.int16))
        assert offset == i
    assert time.perf_counter() - started < 5.0


def _wav(path: Path, seed: int, seconds: float = 0.05) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).uniform(-0.5, 0.5, int(16000 * seconds)), 16000, subtype="PCM_16")


def test_scan_cache_reads_only_new_or_changed_files(tmp_path, monkeypatch):
    """Issue 39 §2.2: with the digest cache, a re-run over an unchanged folder reads no file (one stat each), and
    gives the fingerprint a cacheless listing gives; an added, a removed and a same-size edit whose mtime was put
    back (only the ctime tells) are each noticed, reading only those files."""
    from blat_core.data import sources

    root, cache = tmp_path / "audio", tmp_path / "cache"
    for i in range(30):
        _wav(root / f"part{i % 3}" / f"Y{i:03d}.wav", i)
    read = []
    real = sources.sampled_digest
    monkeypatch.setattr(sources, "sampled_digest", lambda path: read.append(path) or real(path))

    first, names = sources.audio_listing(root, cache=cache)
    assert len(read) == 30 and len(names) == 30 and names.to_pylist() == sorted(names.to_pylist())
    read.clear()
    again = sources.audio_listing(root, cache=cache)
    assert read == [] and again[0] == first and again[1].equals(names)

    def changed(what) -> list[Path]:
        """The files the cached listing read after `what` changed the folder."""
        read.clear()
        what()
        result = sources.audio_listing(root, cache=cache)[0]
        seen = list(read)
        assert result == sources.audio_listing(root)[0]  # the cache never changes the answer
        assert result["digest"] != first["digest"]
        return seen

    edited = root / "part1" / "Y004.wav"
    info = edited.stat()

    def edit():  # same size, other samples, mtime put back as `cp -p` / `touch -r` would
        data = bytearray(edited.read_bytes())
        data[-2:] = bytes([data[-2] ^ 0xFF, data[-1] ^ 0x7F])
        edited.write_bytes(bytes(data))
        os.utime(edited, ns=(info.st_atime_ns, info.st_mtime_ns))

    assert changed(edit) == [edited]
    assert changed(lambda: _wav(root / "part2" / "Y999.wav", 999)) == [root / "part2" / "Y999.wav"]
    assert changed(lambda: (root / "part0" / "Y000.wav").unlink()) == []


def test_scan_cache_that_is_garbage_is_ignored(tmp_path):
    from blat_core.data import sources

    root, cache = tmp_path / "audio", tmp_path / "cache"
    _wav(root / "a.wav", 0)
    expected = sources.audio_listing(root)
    sources.audio_listing(root, cache=cache)
    for planted in cache.iterdir():
        planted.write_bytes(b"PAR1 not a parquet file")
    assert sources.audio_listing(root, cache=cache)[0] == expected[0]


def test_listing_order_is_path_order(tmp_path):
    """The listing (and so the digest every existing fingerprint holds) keeps `Path` order: by parts, so
    `a/b.wav` sorts before `a.b/c.wav` although '.' sorts before '/' in a plain string comparison."""
    from blat_core.data.sources import list_audio

    names = ["a/b.wav", "a.b/c.wav", "a-b.wav", "a/a/z.wav", "a/a.wav", "A.wav", "a/b/c.flac"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert list_audio(tmp_path)[0] == sorted(Path(name) for name in names)


def test_bounded_map_pulls_inputs_only_as_results_are_taken():
    """Issue 39 §2.3: decoding runs at most `window` tasks ahead of the writer (`Executor.map` pulled and submitted
    every input at once, so finished clips piled up while the single writer was busy)."""
    from concurrent.futures import ThreadPoolExecutor

    from blat_core.data.ingest import bounded_map

    pulled = []

    def inputs():
        for i in range(10_000):
            pulled.append(i)
            yield i

    with ThreadPoolExecutor(2) as pool:
        results = bounded_map(pool, lambda x: x * 2, inputs(), window=8)
        assert next(results) == 0
        assert len(pulled) <= 9
        assert list(results) == [2 * i for i in range(1, 10_000)]


def _prepare_args(tmp_path: Path, params: Path, out: str, scratch: str) -> list[str]:
    return ["audiocaps", "--source", str(tmp_path / "sources" / "audiocaps.json"), "--listing",
            str(tmp_path / "sources" / "audiocaps.listing.parquet"), "--out", str(tmp_path / out), "--metrics",
            str(tmp_path / f"{out}.json"), "--scratch", str(tmp_path / scratch), "--params", str(params)]  # fmt: skip


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_prepare_killed_resumes_after_its_last_whole_shard(tmp_path, tiny_corpus):
    """Issue 39 §2.3: `prepare` SIGKILLed after its first finished shard, then started again, keeps those shards
    (it says so and decodes only the rest) and writes exactly the bytes of an uninterrupted run."""
    import yaml

    from stages import scan as scan_stage
    from tests.conftest import project_params, relocated

    params = relocated(project_params(), tiny_corpus)
    params["prepare"]["shard_size_mb"] = 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    scan_stage.main(["--out", str(tmp_path / "sources"), "--params", str(params_file)])

    def stage(out: str, scratch: str, kill_after: int = 0) -> subprocess.CompletedProcess:
        script = textwrap.dedent(f"""
            import os, signal, sys
            from blat_core.data import ingest as prepare
            saved, kill_after = [], {kill_after}
            original = prepare.Progress.save
            def save(self, *args):
                original(self, *args)
                saved.append(1)
                if len(saved) == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
            prepare.Progress.save = save
            from stages import prepare as stage
            stage.main(sys.argv[1:])
        """)
        return subprocess.run([sys.executable, "-c", script, *_prepare_args(tmp_path, params_file, out, scratch)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip

    reference = stage("reference", "scratch_reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    shards = len(list((tmp_path / "reference").glob("waves_*.h5")))
    assert shards >= 3 and not (tmp_path / "scratch_reference").exists()

    killed = stage("out", "scratch", kill_after=1)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    kept = sorted(p.name for p in (tmp_path / "scratch").glob("waves_*.h5"))
    assert kept[:1] == ["waves_00000.h5"] and len(kept) < shards

    resumed = stage("out", "scratch")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "(1 shards already written)" in resumed.stderr
    assert _files(tmp_path / "out") == _files(tmp_path / "reference")
    assert (tmp_path / "out.json").read_bytes() == (tmp_path / "reference.json").read_bytes()
    assert not (tmp_path / "scratch").exists()


def test_real_captions_digest_is_not_read_again_while_nothing_changed(tmp_path, monkeypatch):
    """Issue 39 §2.6: `real_captions` digests the chosen sets' every byte (≈45 GB at paper scale) on its first run
    only: with the cache, a re-run over unchanged files opens none, and gives the same value as a full read; a
    same-size edit with its mtime put back is still seen (ctime)."""
    from blat_core.data import real_captions

    folder = many_shard_set(tmp_path / "prepared", 20)
    cache = tmp_path / "cache"
    full = real_captions.folder_digest(folder)
    assert real_captions.folder_digest(folder, cache) == full
    opened = []
    original = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self) or original(self, *a, **k))
    assert real_captions.folder_digest(folder, cache) == full
    assert [p for p in opened if p.is_relative_to(folder)] == []

    shard = folder / "waves_00007.h5"
    info, data = shard.stat(), bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(info.st_atime_ns, info.st_mtime_ns))
    changed = real_captions.folder_digest(folder, cache)
    assert changed != full and changed == real_captions.folder_digest(folder)


def test_epoch_batches_cost_a_batch_not_a_dataset_per_step():
    """The pre-training sampler drew a permutation of the whole set on every step (≈0.24 s a step at AudioSet's 2M
    clips here: hours over 200K steps). It is drawn once per epoch now; the batches are the same."""
    from blat_core.train.sampling import epoch_batches

    items, batch = 2_000_000, 64
    for step in (0, 1, 31_249, 31_250, 31_251):
        epoch, position = divmod(step, items // batch)
        order = np.random.default_rng([7, epoch]).permutation(items)
        assert np.array_equal(epoch_batches(7, step, items, batch), order[position * batch : (position + 1) * batch])
    started = time.perf_counter()
    for step in range(100, 400):
        epoch_batches(7, step, items, batch)
    assert time.perf_counter() - started < 3.0


def test_a_prepared_set_is_read_once_and_stays_columnar(tmp_path):
    """Opening AudioSet's manifest made ≈2 KB of Python objects a row (≈3 GB at 2.08M) at every open, and the
    labelled view built float32 targets for every clip (4.4 GB): the manifest stays Arrow columns, read once per
    process, and targets are built for the clips an evaluation uses."""
    import tracemalloc

    from benchmarks.scale import build_metadata_only
    from blat_core.data.labelled import labelled_clips
    from blat_core.data.prepared import PreparedDataset

    rows, folder = 20_000, tmp_path / "audioset"
    build_metadata_only(folder, rows)
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    try:
        first = PreparedDataset(folder)
        trainable = first.training_mask()
        opened = tracemalloc.get_traced_memory()[1]
        arrow = pa.total_allocated_bytes() - arrow_before
        tracemalloc.reset_peak()
        before_second = tracemalloc.get_traced_memory()[0]
        second = PreparedDataset(folder)
        again, arrow_again = tracemalloc.get_traced_memory()[0] - before_second, pa.total_allocated_bytes()
        assert second.training_mask().sum() == trainable.sum() == rows - rows // 100
        tracemalloc.reset_peak()
        data = labelled_clips(second, used=True)
        labelled = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert opened < 100 * rows and arrow < 400 * rows, (opened / rows, arrow / rows)  # bytes a row
    assert again < 50_000 and arrow_again - arrow_before <= arrow  # the second open shares the first's columns
    assert data.targets.shape == (2 * (rows // 100), 527) and data.targets.sum() > 0  # eval + balanced_train
    assert labelled < rows * 527  # under a quarter of float32 targets for every clip
    used = [a for a, split in zip(first.ids, first.column("split"), strict=True) if split != "unbalanced_train"]
    assert data.audio_ids == used


def test_the_scale_rehearsal_runs_in_tiny_mode(tmp_path):
    """benchmarks/scale.py --tiny: every operation runs at two sizes and on a metadata-only manifest, and the JSON
    holds each run's time per item, peak RSS and open descriptors (the full-size figures: docs/real-data.md)."""
    import json

    out = tmp_path / "scale.json"
    done = subprocess.run([sys.executable, "benchmarks/scale.py", "--tiny", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert [r for r in runs if "error" in r] == []
    from benchmarks.scale import AUDIO_OPS, METADATA_OPS

    assert {(r["op"], r["size"]) for r in runs} == {(op, size) for op in AUDIO_OPS for size in (200, 400)} | {
        (op, 1000) for op in METADATA_OPS}
    assert all(r["us_per_item"] > 0 and r["peak_rss_mb"] >= r["rss_before_mb"] > 0 and r["max_fds"] > 0 for r in runs)
    assert not runs[0].get("in_process") and all(r["in_process"] for r in runs[1:])  # the child path ran once
    assert set(result["growth"]) == set(AUDIO_OPS) and "per-item ratio" in done.stdout
