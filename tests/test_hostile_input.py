"""Hostile or unlucky input never gets further than a clear, counted skip or a one-line message: paths
that escape the dataset, special files, planted checkpoints, killed runs, duplicate ids, byte-order
marks, non-finite params, bad evaluation lists and clips of absurd length."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
import yaml

from blat_core.data import datasets as readers
from blat_core.data.audio import load_clip
from blat_core.data.datasets import esc50
from blat_core.data.datasets.common import MetadataError
from blat_core.data.prepare import prepare_dataset
from blat_core.data.sources import audio_listing, inside_root
from blat_core.params import ParamsError, from_dict
from blat_core.train import checkpointing
from blat_core.train.pretrain import PretrainParams
from tests.conftest import ROOT, joins_for, prepare_params_for, project_params, relocated


def _copy(tiny_corpus: Path, tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "demo"
    for name in names:
        shutil.copytree(tiny_corpus / name, root / name, symlinks=True)
    return root


def _prepare(root: Path, name: str, out: Path, **overrides) -> dict:
    params = prepare_params_for(root, **overrides)
    out.mkdir(parents=True)
    return prepare_dataset(name, params, joins_for(name, params), out, workers=1)


def _append_rows(csv_path: Path, rows: list[str]) -> None:
    with csv_path.open("a") as handle:
        handle.writelines(row + "\n" for row in rows)


# ---------------------------------------------------------------- 1. paths outside the dataset
def test_metadata_cannot_name_a_file_outside_the_audio_root(tiny_corpus, tmp_path):
    """An absolute name or one climbing out with `..` is skipped as outside_audio_root; the outside file
    never reaches the manifest. A symlink the user placed inside the folder is followed."""
    root = _copy(tiny_corpus, tmp_path, "esc50")
    outside = tmp_path / "outside.wav"
    sf.write(outside, 0.3 * np.sin(np.linspace(0, 2000, 16000)).astype(np.float32), 16000)
    (root / "esc50" / "audio" / "linked.wav").symlink_to(outside)
    _append_rows(root / "esc50" / "meta" / "esc50.csv", [
        "../../outside.wav,1,0,dog,True,x,A", f"{outside},1,0,dog,True,x,A", "linked.wav,1,0,dog,True,x,A",
    ])  # fmt: skip
    metrics = _prepare(root, "esc50", tmp_path / "out")
    assert metrics["skipped"] == {"outside_audio_root": 2}
    manifest = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    assert "linked.wav" in {r["source_path"] for r in manifest}
    assert not any("outside" in r["source_path"] for r in manifest)


def test_inside_root_is_lexical_and_strict(tmp_path):
    """Containment: a/b stays, ../x, /abs, a/../../x and '' do not; a/../b normalises inside."""
    assert inside_root(tmp_path, "a/b.wav") == str(tmp_path / "a" / "b.wav")
    assert inside_root(tmp_path, "a/../b.wav") == str(tmp_path / "b.wav")
    for bad in ("../x.wav", "/etc/passwd", "a/../../x.wav", "", ".", "x\0.wav"):
        assert inside_root(tmp_path, bad) is None, bad


# ---------------------------------------------------------------- 2. special files
def _listing_within(root: Path, seconds: float = 20.0) -> dict:
    """audio_listing(root) in a daemon thread: a FIFO that blocks the read fails the test, not the suite."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(audio_listing(root)[0]), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "scan is blocked (a FIFO was opened)"
    return result


def test_scan_skips_and_counts_special_files(tiny_corpus, tmp_path):
    """A FIFO named *.wav, a symlink loop, a dangling link and a folder link loop are skipped and counted;
    the listing of the real files is unchanged."""
    root = _copy(tiny_corpus, tmp_path, "esc50")
    audio = root / "esc50" / "audio"
    clean = _listing_within(audio)
    os.mkfifo(audio / "pipe.wav")
    (audio / "loop.wav").symlink_to(audio / "loop.wav")
    (audio / "dangling.wav").symlink_to(audio / "gone.wav")
    (audio / "again").symlink_to(audio, target_is_directory=True)
    listing = _listing_within(audio)
    assert listing["skipped"] == {"broken_link": 2, "folder_loop": 1, "not_regular_file": 1}
    assert (listing["files"], listing["digest"]) == (clean["files"], clean["digest"])


def test_prepare_skips_a_fifo_the_metadata_names(tiny_corpus, tmp_path):
    """A metadata row naming a FIFO is skipped as not_regular_file instead of blocking a worker forever."""
    root = _copy(tiny_corpus, tmp_path, "esc50")
    os.mkfifo(root / "esc50" / "audio" / "pipe.wav")
    _append_rows(root / "esc50" / "meta" / "esc50.csv", ["pipe.wav,1,0,dog,True,x,A"])
    result = {}
    thread = threading.Thread(target=lambda: result.update(_prepare(root, "esc50", tmp_path / "out")), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "prepare is blocked on the FIFO"
    assert result["skipped"] == {"not_regular_file": 1}


# ---------------------------------------------------------------- 3. planted checkpoints
class _Planted:
    """Unpickling this object creates `marker`: proof that a load ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.Adam(model.parameters(), lr=1.0e-3)


def test_a_planted_checkpoint_never_runs_code(tmp_path):
    """Whatever sits in the scratch folder — the old checkpoint.pt or a tensors.pt beside a matching
    state.json — loading it runs no code; a mismatching fingerprint is refused before any unpickling."""
    marker = tmp_path / "code_ran"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    torch.save({"fingerprint": "fp", "step": 3, "evil": _Planted(marker)}, scratch / "checkpoint.pt")
    assert checkpointing.Checkpointer(scratch, "fp").load() is None and not marker.exists()

    model, optimizer = _model_and_optimizer()
    checkpointer = checkpointing.Checkpointer(scratch, "fp")
    checkpointer.save(3, model, optimizer, {"best": (0.5, model.state_dict()), "history": [0.1, float("-inf")]})
    loaded = checkpointing.Checkpointer(scratch, "fp").load()
    assert loaded["step"] == 3 and loaded["extra"]["history"] == [0.1, float("-inf")]
    torch.testing.assert_close(loaded["extra"]["best"][1]["weight"], model.weight)

    torch.save({"model": _Planted(marker)}, checkpointer.path / "tensors.pt")
    assert checkpointing.Checkpointer(scratch, "fp").load() is None and not marker.exists()


def test_fingerprint_is_checked_before_any_unpickling(tmp_path, monkeypatch):
    model, optimizer = _model_and_optimizer()
    checkpointing.Checkpointer(tmp_path, "mine").save(1, model, optimizer, {})
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran before the fingerprint check"))
    assert checkpointing.Checkpointer(tmp_path, "another configuration").load() is None


def test_resume_restores_every_rng_exactly(tmp_path):
    """Python's, NumPy's and torch's RNG states round-trip through state.json / tensors.pt."""
    import random

    model, optimizer = _model_and_optimizer()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    checkpointer = checkpointing.Checkpointer(tmp_path, "fp")
    checkpointer.save(5, model, optimizer, {})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    assert checkpointing.resume(checkpointer, model, optimizer, 10)[0] == 5
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


# ---------------------------------------------------------------- 4. a killed prepare
def _many_clips(root: Path, count: int) -> None:
    """An ESC-50-style dataset of `count` 5 s clips at 44.1 kHz (each needs resampling: slow enough to kill)."""
    audio, meta = root / "esc50" / "audio", root / "esc50" / "meta"
    audio.mkdir(parents=True)
    meta.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for i in range(count):
        wave = (0.1 * rng.standard_normal(44100 * 5)).astype(np.float32)
        sf.write(audio / f"1-{i}-A-0.wav", wave, 44100, subtype="PCM_16")
        rows.append(f"1-{i}-A-0.wav,1,0,dog,True,{i},A")
    (meta / "esc50.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_killed_prepare_leaves_no_workers_and_no_temp_folder_behind(tmp_path):
    """SIGKILL of prepare's main process takes its decoding workers with it; the next run removes the
    hidden temporary folder the killed one left."""
    root = tmp_path / "demo"
    _many_clips(root, 300)
    params = relocated(project_params(), root)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "esc50.json").write_text('{"joins": {}}')
    args = [sys.executable, str(ROOT / "stages" / "prepare.py"), "esc50", "--source", "sources/esc50.json",
            "--out", "prepared/esc50", "--metrics", "m.json"]  # fmt: skip
    env = {**os.environ, "BLAT_NUM_WORKERS": "2", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers = []
    while time.time() < deadline and process.poll() is None:
        workers = psutil.Process(process.pid).children(recursive=True)
        if len(workers) >= 2 and list((tmp_path / "prepared").glob(".esc50.*.tmp")):
            break
        time.sleep(0.05)
    assert process.poll() is None and len(workers) >= 2, "prepare ended before it could be killed"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived their parent: {[p.pid for p in alive]}"
    assert list((tmp_path / "prepared").glob(".esc50.*.tmp")), "the killed run left no temp folder to clean"
    subprocess.run(args, cwd=tmp_path, env=env, check=True, capture_output=True)
    assert not list((tmp_path / "prepared").glob(".*.tmp"))
    assert (tmp_path / "prepared" / "esc50" / "manifest.parquet").is_file()


# ---------------------------------------------------------------- 5. duplicate clip ids
def test_duplicate_ids_are_skipped_and_counted(tiny_corpus, tmp_path):
    """A row repeating a file name, or the same YouTube id in two AudioSet segment files, is skipped as
    duplicate_id: every manifest id is unique, so a clip cannot sit in two folds or splits."""
    root = _copy(tiny_corpus, tmp_path, "esc50", "audioset", "audiocaps", "vggsound")
    esc50_csv = root / "esc50" / "meta" / "esc50.csv"
    first = esc50_csv.read_text().splitlines()[1].split(",")
    _append_rows(esc50_csv, [",".join([first[0], "5" if first[1] != "5" else "4", *first[2:]])])
    metrics = _prepare(root, "esc50", tmp_path / "esc50")
    ids = pq.read_table(tmp_path / "esc50" / "manifest.parquet").column("audio_id").to_pylist()
    assert metrics["skipped"] == {"duplicate_id": 1} and len(ids) == len(set(ids))

    segments = root / "audioset" / "metadata"
    ytid_line = next(line for line in (segments / "balanced_train_segments.csv").read_text().splitlines()
                     if not line.startswith("#"))  # fmt: skip
    _append_rows(segments / "eval_segments.csv", [ytid_line])
    metrics = _prepare(root, "audioset", tmp_path / "audioset")
    ids = pq.read_table(tmp_path / "audioset" / "manifest.parquet").column("audio_id").to_pylist()
    assert metrics["skipped"] == {"duplicate_id": 1} and len(ids) == len(set(ids))


# ---------------------------------------------------------------- 6. byte-order marks and encodings
def test_a_byte_order_mark_changes_nothing(tiny_corpus, tmp_path):
    """With a UTF-8 BOM on vggsound.csv and the AudioSet segment files, the leakage guard still sees the
    first YouTube id and no comment line becomes a malformed row."""
    root = _copy(tiny_corpus, tmp_path, "audioset", "vggsound")
    metas = {"audioset": root / "audioset" / "metadata", "vggsound": root / "vggsound" / "metadata"}
    plain = readers.evaluation_youtube_ids(metas)
    plain_read = readers.read_dataset("audioset", metas["audioset"], "{split}/Y{youtube_id}.flac", {})
    for path in [metas["vggsound"] / "vggsound.csv", *metas["audioset"].glob("*_segments.csv")]:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert readers.evaluation_youtube_ids(metas) == plain
    first_test = next(line.split(",")[0] for line in (metas["vggsound"] / "vggsound.csv").read_text("utf-8-sig")
                      .splitlines() if line.endswith(",test"))  # fmt: skip
    assert "vggsound/test" in plain[first_test]
    read = readers.read_dataset("audioset", metas["audioset"], "{split}/Y{youtube_id}.flac", {})
    assert not [p for p in read.problems if p.reason == "malformed_row"]
    assert [r.audio_id for r in read.rows] == [r.audio_id for r in plain_read.rows]


def test_metadata_that_is_not_utf8_names_the_file_and_line(tmp_path):
    (tmp_path / "esc50.csv").write_bytes(b"filename,fold,target,category\na.wav,1,0,dog\nb\xe9.wav,1,0,dog\n")
    with pytest.raises(MetadataError, match=r"esc50.csv:3: not valid UTF-8 \(byte 0xe9\)"):
        esc50.read(tmp_path, "{filename}", {})


# ---------------------------------------------------------------- 7. non-finite params
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_params_reject_non_finite_numbers_naming_the_key(value):
    section = project_params()["pretrain"]
    section["lr"] = value
    with pytest.raises(ParamsError, match=r"pretrain\.lr: must be a finite number"):
        from_dict(PretrainParams, section, "pretrain")


def test_yaml_inf_and_nan_are_rejected_too(tmp_path):
    for text in (".inf", ".nan", "-.inf"):
        section = project_params()["pretrain"]
        section["lr"] = yaml.safe_load(f"v: {text}")["v"]
        with pytest.raises(ParamsError, match=r"pretrain\.lr"):
            from_dict(PretrainParams, section, "pretrain")


# ---------------------------------------------------------------- 8. evaluation lists, checked at entry
def _evaluate(tmp_path: Path, prepared_root: Path, task: str, change) -> subprocess.CompletedProcess:
    params = project_params()
    change(params["evaluate"]["tasks"][task])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = [sys.executable, str(ROOT / "stages" / "evaluate.py"), task, "--models", str(tmp_path / "models"),
            "--prepared", str(prepared_root), "--metrics", "m.json", "--params", "params.yaml"]  # fmt: skip
    return subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )


def test_evaluation_lists_are_checked_at_stage_entry(tmp_path, prepared):
    """An unknown dataset, an unprepared one or a missing model fails before any model is loaded, with one
    line naming the params key and the valid names (exit 2, no traceback, no metrics)."""
    prepared_root = tmp_path / "prepared"
    prepared_root.mkdir()
    for name in ("esc50", "audiocaps"):
        (prepared_root / name).symlink_to(prepared[name][0])
    (tmp_path / "models").mkdir()
    cases = [
        ("zeroshot", lambda t: t.update(datasets=["esc50", "nope"]), "evaluate.tasks.zeroshot.datasets[1]: 'nope'"),
        ("zeroshot", lambda t: t.update(datasets=["esc50", "us8k"]), "'us8k' is not prepared"),
        ("retrieval", lambda t: t.update(datasets={"esc50": "all"}), "evaluate.tasks.retrieval.datasets.esc50"),
        ("zeroshot", lambda t: t.update(datasets=["esc50"]), "evaluate.tasks.zeroshot.models[0]: no BLAT model"),
    ]
    for task, change, message in cases:
        result = _evaluate(tmp_path, prepared_root, task, change)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr, result.stderr
        assert "valid" in result.stderr or "prepare@" in result.stderr
        assert not (tmp_path / "m.json").exists()


def test_a_params_error_is_one_line_from_every_stage(tmp_path):
    """Each stage script, given a params file with a non-finite value in its section, prints one line."""
    params = project_params()
    params["prepare"]["silence_dbfs"] = -math.inf
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = [sys.executable, str(ROOT / "stages" / "scan.py"), "--out", "sources", "--params", "params.yaml"]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "error: prepare.silence_dbfs: must be a finite number, got -inf"


# ---------------------------------------------------------------- 10. clip length
def test_too_short_and_too_long_clips_are_skipped(tmp_path, monkeypatch):
    """A 1-sample file is too_short; a file over max_seconds is too_long, judged from its header without
    decoding it."""
    one = tmp_path / "one.wav"
    sf.write(one, np.array([0.5], dtype=np.float32), 16000)
    assert load_clip(str(one), 16000, -60.0, 0.1, 60.0)[1] == "too_short"
    long = tmp_path / "long.flac"
    sf.write(long, (0.1 * np.ones(8000 * 90)).astype(np.float32), 8000)
    from blat_core.data import audio as audio_module

    monkeypatch.setattr(audio_module, "_read_into", lambda *a, **k: pytest.fail("the long file was decoded"))
    samples, reason, detail = load_clip(str(long), 16000, -60.0, 0.1, 60.0)
    assert samples is None and reason == "too_long" and "90.0 s" in detail


def test_length_limits_are_params_and_counted(tiny_corpus, tmp_path):
    root = _copy(tiny_corpus, tmp_path, "esc50")
    audio = root / "esc50" / "audio"
    sf.write(audio / "tiny.wav", np.array([0.5, -0.5], dtype=np.float32), 16000)
    sf.write(audio / "huge.wav", (0.1 * np.ones(16000 * 61)).astype(np.float32), 16000)
    _append_rows(root / "esc50" / "meta" / "esc50.csv", ["tiny.wav,1,0,dog,True,x,A", "huge.wav,1,0,dog,True,y,A"])
    metrics = _prepare(root, "esc50", tmp_path / "out")
    assert metrics["skipped"] == {"too_long": 1, "too_short": 1}
    with pytest.raises(ParamsError, match="prepare.min_seconds"):
        prepare_params_for(root, min_seconds=5.0, max_seconds=1.0)


# ---------------------------------------------------------------- 11. lengths the header does not give
def flac_without_length(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A FLAC as a program writing to a pipe leaves it: STREAMINFO's total-samples field (36 bits at byte 13.5
    of the block, after the 4-byte "fLaC" and 4-byte block header) and its MD5 are 0, which the format allows
    for "unknown" (FLAC format spec, METADATA_BLOCK_STREAMINFO)."""
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
    sf.write(path, tone.astype(np.float32), rate, format="FLAC")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # the first block is STREAMINFO
    info = 8
    data[info + 13] &= 0xF0
    data[info + 14 : info + 18] = bytes(4)
    data[info + 18 : info + 34] = bytes(16)
    path.write_bytes(bytes(data))
    return path


def test_a_flac_without_a_length_is_decoded_in_blocks_up_to_the_cap(tmp_path):
    """Length field 0 means unknown: the file is decoded (not skipped as too_long from libsndfile's absurd
    count), every sample is read, and the cap still stops a long one."""
    path = flac_without_length(tmp_path / "piped.flac", 3.0)
    assert sf.info(str(path)).frames > 2**60  # what libsndfile reports for it
    normal = tmp_path / "normal.flac"
    sf.write(normal, (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 16000)).astype(np.float32), 16000)
    samples, reason, detail = load_clip(str(path), 16000, -60.0, 0.0, 60.0)
    assert reason == "" and len(samples) == 48000, (reason, detail)
    np.testing.assert_array_equal(samples, load_clip(str(normal), 16000, -60.0, 0.0, 60.0)[0])
    samples, reason, detail = load_clip(str(path), 16000, -60.0, 0.0, 1.0)
    assert samples is None and reason == "too_long" and "decoding stopped" in detail


def test_streamed_decoding_gives_the_whole_file_samples(tmp_path, monkeypatch):
    """stream_clip's pieces (blocks resampled across their boundaries) are load_clip's samples, for down-, up-
    and non-integer-ratio resampling, stereo, and a file whose header gives no length: the same sums in another
    order, so at most a rare 1-LSB rounding difference (measured: 1 sample in 36,800 with 3,000-frame blocks)."""
    from blat_core.data import audio as audio_module
    from blat_core.data.audio import stream_clip

    monkeypatch.setattr(audio_module, "BLOCK_FRAMES", 3000)
    rng = np.random.default_rng(0)
    for rate, target, seconds in ((48000, 16000, 2.3), (44100, 16000, 1.7), (22050, 32000, 1.1), (16000, 16000, 0.9)):
        path = tmp_path / f"{rate}_{target}.wav"
        sf.write(path, (0.2 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32), rate)
        whole = load_clip(str(path), target, float("-inf"))[0]
        pieces = list(stream_clip(str(path), target))
        assert len(pieces) > 3
        _same_samples(np.concatenate(pieces), whole)
    piped = flac_without_length(tmp_path / "piped.flac", 2.0)
    _same_samples(np.concatenate(list(stream_clip(str(piped), 32000))), load_clip(str(piped), 32000, float("-inf"))[0])


def _same_samples(streamed: np.ndarray, whole: np.ndarray) -> None:
    assert streamed.shape == whole.shape
    difference = np.abs(streamed.astype(np.int32) - whole.astype(np.int32))
    assert difference.max() <= 1 and np.count_nonzero(difference) <= 1e-3 * len(whole)


# ---------------------------------------------------------------- 12. YAML that expands
def test_nested_yaml_aliases_in_metadata_are_refused_at_once(tmp_path):
    """A 520-byte MACS.yaml of nested aliases ("billion laughs", 9^8 entries) is refused in milliseconds with a
    message, where reading it used to take seconds per level; a file with a few aliases still reads."""
    from blat_core.data.datasets import macs

    levels = ['l0: &l0 {filename: x.wav, annotations: [{sentence: "a laugh", tags: [lol]}]}']
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = "\n".join(levels) + "\nfiles: *l8\n"
    assert len(bomb) < 600
    (tmp_path / "MACS.yaml").write_text(bomb)
    started = time.perf_counter()
    with pytest.raises(MetadataError, match="aliases .* expand"):
        macs.read(tmp_path, "{filename}", {})
    assert time.perf_counter() - started < 1.0
    shared = ("tags: &tags [birds, traffic]\nfiles:\n - {filename: a.wav, annotations: [{sentence: s, tags: *tags}]}\n"
              " - {filename: b.wav, annotations: [{sentence: t, tags: *tags}]}\n")  # fmt: skip
    (tmp_path / "MACS.yaml").write_text(shared)
    assert [row.labels for row in macs.read(tmp_path, "{filename}", {}).rows] == [["birds", "traffic"]] * 2


def test_a_params_file_of_nested_aliases_is_one_line(tmp_path):
    from blat_core.params import load_params_file

    names = "abcdefgh"
    levels = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip(names, names[1:], strict=False)]
    (tmp_path / "params.yaml").write_text("\n".join(levels) + "\n")
    with pytest.raises(ParamsError, match="aliases"):
        load_params_file(tmp_path / "params.yaml")
