"""prepare: every dataset round-trips from its real format; bad input is counted by reason; the
leakage guard flags evaluation clips; outputs are atomic and the stage fails clearly."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml

from blat_core.data.audio import load_clip
from blat_core.data.demo.damage import damage_corpus
from blat_core.data.prepare import PrepareError, prepare_dataset
from blat_core.data.prepared import PreparedDataset
from stages import prepare as prepare_stage
from stages import scan as scan_stage
from tests.conftest import joins_for, prepare_params_for, project_params, relocated


def _manifest(prepared, name):
    return pq.read_table(prepared[name][0] / "manifest.parquet").to_pylist()


def test_every_dataset_round_trips(prepared, tiny_corpus):
    """Each manifest holds exactly the clips its metadata lists, at the pipeline rate."""
    expected = {
        "audioset": sum(
            len(open(tiny_corpus / "audioset" / "metadata" / f"{s}_segments.csv").readlines()) - 3
            for s in ("balanced_train", "unbalanced_train", "eval")
        ),
        "audiocaps": len(
            {
                r["youtube_id"]
                for s in ("train", "val", "test")
                for r in csv.DictReader(open(tiny_corpus / "audiocaps" / "metadata" / f"{s}.csv"))
            }
        ),
        "clotho": sum(
            len(open(tiny_corpus / "clotho" / "metadata" / f"clotho_captions_{s}.csv").readlines()) - 1
            for s in ("development", "validation", "evaluation")
        ),
        "macs": len(yaml.safe_load(open(tiny_corpus / "macs" / "metadata" / "MACS.yaml"))["files"]),
        "esc50": len(open(tiny_corpus / "esc50" / "meta" / "esc50.csv").readlines()) - 1,
        "us8k": len(open(tiny_corpus / "us8k" / "metadata" / "UrbanSound8K.csv").readlines()) - 1,
        "fsd50k": sum(
            len(open(tiny_corpus / "fsd50k" / "FSD50K.ground_truth" / f"{s}.csv").readlines()) - 1
            for s in ("dev", "eval")
        ),
        "vggsound": len(open(tiny_corpus / "vggsound" / "metadata" / "vggsound.csv").readlines()),
    }
    for name, count in expected.items():
        folder, metrics = prepared[name]
        dataset = PreparedDataset(folder)
        assert len(dataset) == count == metrics["clips"], name
        assert metrics["skipped_total"] == 0 and metrics["bad_fraction"] == 0.0, name
        assert dataset.sample_rate == 16000 and dataset.name == name


def test_manifest_contents(prepared):
    audiocaps = _manifest(prepared, "audiocaps")
    by_split = {s: [r for r in audiocaps if r["split"] == s] for s in ("train", "val", "test")}
    assert all(len(r["captions"]) == 1 for r in by_split["train"])
    assert all(len(r["captions"]) == 5 for r in by_split["val"] + by_split["test"])
    # Tags come from joining the YouTube id to AudioSet: mids and display names.
    audioset = {r["youtube_id"]: r for r in _manifest(prepared, "audioset")}
    for row in audiocaps:
        assert row["tag_mids"] == audioset[row["youtube_id"]]["tag_mids"] and row["tag_mids"]
        assert len(row["tag_names"]) == len(row["tag_mids"])
    assert all(
        len(r["captions"]) == 5 and r["split"] in ("development", "validation", "evaluation")
        for r in _manifest(prepared, "clotho")
    )
    esc50 = _manifest(prepared, "esc50")
    assert {r["fold"] for r in esc50} == {1, 2, 3, 4, 5}
    assert all(len(r["labels"]) == 1 for r in esc50) and "door_wood_knock" in {r["labels"][0] for r in esc50}
    assert {r["fold"] for r in _manifest(prepared, "us8k")} == set(range(1, 11))
    fsd = _manifest(prepared, "fsd50k")
    assert {r["split"] for r in fsd} == {"train", "val", "eval"}
    assert all(r["tag_mids"] and len(r["tag_mids"]) == len(r["labels"]) for r in fsd)
    macs = _manifest(prepared, "macs")
    assert all(len(r["captions"]) == 3 and r["labels"] for r in macs)
    assert all(r["duration"] > 0 and r["num_samples"] == round(r["duration"] * 16000) for r in esc50)


def test_waveform_matches_resampled_source(prepared, tiny_corpus):
    """A stored clip equals the source file, mono-mixed and resampled with torchaudio, to int16 precision."""
    dataset = PreparedDataset(prepared["us8k"][0])
    row = next(r for r in dataset.rows() if sf.info(tiny_corpus / "us8k" / "audio" / r["source_path"]).channels == 2)
    source, rate = sf.read(tiny_corpus / "us8k" / "audio" / row["source_path"], dtype="float32", always_2d=True)
    expected = torchaudio.functional.resample(torch.from_numpy(source.mean(1)), rate, 16000).numpy()
    stored = dataset.waveform(row["audio_id"]).astype(np.float32) / 32767
    assert stored.shape == expected.shape
    assert np.abs(stored - expected).max() < 2 / 32767


def test_leakage_guard(prepared):
    """AudioCaps val/test clips and VGGSound test clips inside AudioSet's training segments are flagged."""
    audiocaps = _manifest(prepared, "audiocaps")
    held_out = {r["youtube_id"]: r["split"] for r in audiocaps if r["split"] in ("val", "test")}
    vgg_test = {r["youtube_id"] for r in _manifest(prepared, "vggsound") if r["split"] == "test"}
    audioset = _manifest(prepared, "audioset")
    flagged = [r for r in audioset if r["eval_overlap"]]
    assert {r["youtube_id"] for r in flagged} == ({r["youtube_id"] for r in audioset} & (set(held_out) | vgg_test))
    assert all(not r["trainable"] for r in flagged)
    assert all(r["split"] != "eval" for r in flagged)
    assert all(not r["trainable"] for r in audioset if r["split"] == "eval")
    assert sum(r["trainable"] for r in audioset) == len(audioset) - len(flagged) - sum(
        r["split"] == "eval" for r in audioset
    )
    metrics = prepared["audioset"][1]["leakage"]
    assert metrics["flagged_clips"] == len(flagged) > 0
    assert metrics["by_source"]["audiocaps/test"] == sum(1 for s in held_out.values() if s == "test")
    assert metrics["by_source"]["vggsound/test"] >= 1
    assert all(r["trainable"] == (r["split"] == "train") for r in audiocaps)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, tiny_corpus):
    root = tmp_path_factory.mktemp("damaged") / "demo"
    return root, damage_corpus(tiny_corpus, root)


def test_bad_inputs_counted_by_reason(tmp_path, damaged):
    """Each damage of the damaged copy is skipped under its own reason, counted exactly and listed."""
    root, expected = damaged
    params = prepare_params_for(root)
    for name, counts in expected.items():
        out = tmp_path / name
        out.mkdir()
        metrics = prepare_dataset(name, params, joins_for(name, params), out, workers=2)
        found = dict(metrics["skipped"])
        if metrics["unknown_labels"]:
            found["unknown_labels"] = metrics["unknown_labels"]
        assert found == counts, name
        listed = list(csv.DictReader((out / "skipped.csv").open()))
        assert sum(1 for r in listed if r["reason"] not in ("unknown_mid", "unknown_label")) == metrics["skipped_total"]
        assert metrics["bad_fraction"] == pytest.approx(
            metrics["skipped_total"] / (metrics["skipped_total"] + metrics["clips"]), abs=1e-6
        )


def test_too_much_bad_input_fails_clearly(tmp_path, damaged):
    root, _ = damaged
    params = prepare_params_for(root, max_bad_fraction=0.01)
    with pytest.raises(PrepareError, match=r"esc50: 2 of \d+ clips are bad .*prepare.max_bad_fraction=0.01"):
        prepare_dataset("esc50", params, {}, tmp_path, workers=1)


def test_load_clip_reasons(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.full(1600, 1e-5, dtype=np.float32), 16000)
    assert load_clip(str(silent), 16000, -60.0)[1] == "silent_audio"
    assert load_clip(str(tmp_path / "nope.wav"), 16000, -60.0)[1] == "missing_audio"
    no_frames = tmp_path / "no_frames.wav"
    sf.write(no_frames, np.zeros((0, 1), dtype=np.float32), 16000)
    assert load_clip(str(no_frames), 16000, -60.0)[1] == "empty_audio"
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.full(1600, 0.5, dtype=np.float32), 8000)
    samples, reason, _ = load_clip(str(loud), 16000, -60.0)
    assert reason == "" and samples.dtype == np.int16 and len(samples) == 3200


def _write_params(path, corpus, **prepare_overrides):
    params = relocated(project_params(), corpus)
    params["prepare"].update(prepare_overrides)
    path.write_text(yaml.safe_dump(params))


def _prepare_main(tmp_path, dataset, params):
    source = tmp_path / "sources" / f"{dataset}.json"
    args = [dataset, "--source", str(source), "--out", str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json")]
    prepare_stage.main([*args, "--params", str(params)])


def test_stage_main_writes_outputs_atomically(tmp_path, tiny_corpus):
    """scan + prepare mains write the fingerprint, the output folder and namespaced metrics; no temp left."""
    params = tmp_path / "params.yaml"
    _write_params(params, tiny_corpus)
    scan_stage.main(["--out", str(tmp_path / "sources"), "--params", str(params)])
    fingerprint = json.loads((tmp_path / "sources" / "audiocaps.json").read_text())
    assert set(fingerprint["joins"]) == {"audioset", "vggsound"} and fingerprint["audio"]["files"] > 0
    _prepare_main(tmp_path, "audiocaps", params)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["prepare"]["audiocaps"]["clips"] == len(PreparedDataset(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "out", "params.yaml", "sources"]


def test_stage_failure_message_and_no_partial_output(tmp_path, damaged):
    root, _ = damaged
    params = tmp_path / "params.yaml"
    _write_params(params, root, max_bad_fraction=0.0)
    scan_stage.main(["--out", str(tmp_path / "sources"), "--params", str(params)])
    with pytest.raises(SystemExit, match=r"prepare@esc50 failed: esc50: 2 of"):
        _prepare_main(tmp_path, "esc50", params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "sources"]


def test_metrics_are_repeatable(tmp_path, tiny_corpus, prepared):
    """Preparing the same data again gives identical metrics and manifest (no timings in metrics)."""
    params = prepare_params_for(tiny_corpus)
    again = prepare_dataset("clotho", params, {}, tmp_path, workers=1)
    assert again == prepared["clotho"][1]
    first = pq.read_table(prepared["clotho"][0] / "manifest.parquet")
    assert pq.read_table(tmp_path / "manifest.parquet").equals(first)
