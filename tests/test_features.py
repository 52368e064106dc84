"""features: every clip's frame embeddings, equal to the model on the clip alone, and the same
whether one process or two (torchrun, gloo) compute them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from blat_core.bootstrap.features import FeaturesParams, extract
from blat_core.data.features import FrameFeatures
from blat_core.data.prepared import PreparedDataset
from blat_core.distributed import Ranks
from blat_core.models.audio.encoder import AudioEncoderParams, build_audio_encoder, load_audio_encoder
from blat_core.models.checkpoints import save_model
from tests.conftest import ROOT, project_params

ENCODER = AudioEncoderParams(name="cnn14", channels=[4, 8, 16, 32, 64, 64])


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("encoder")
    model = build_audio_encoder(ENCODER.config(16000, num_classes=5))
    save_model(folder / "tagger", model.state_dict(), kind="audio_encoder", config=ENCODER.config(16000, num_classes=5))
    return folder


def test_frames_match_the_model_on_each_clip(prepared, encoder_folder, tmp_path):
    dataset = PreparedDataset(prepared["clotho"][0])
    model, _ = load_audio_encoder(encoder_folder)
    summary = extract(model, dataset, tmp_path / "out", FeaturesParams(["clotho"], 4, 1), torch.device("cpu"), Ranks())
    features = FrameFeatures(tmp_path / "out")
    assert summary["clips"] == len(features) == len(dataset)
    for audio_id in dataset.ids[:5]:
        wave = torch.from_numpy(dataset.waveform(audio_id).astype(np.float32) / 32768)[None]
        with torch.no_grad():
            expected = model.forward_frames(wave)[0].numpy()
        got = features.frames(audio_id)
        assert got.dtype == np.float16 and got.shape == expected.shape
        np.testing.assert_allclose(got.astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    assert not list(tmp_path.glob(".*partial*"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_equal_one(prepared, encoder_folder, tmp_path):
    params = project_params()
    params["features"]["shard_size_mb"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    common = [
        str(ROOT / "stages" / "features.py"),
        "--prepared",
        str(prepared["audiocaps"][0]),
        "--encoder",
        str(encoder_folder),
        "--params",
        str(tmp_path / "params.yaml"),
    ]
    env = {**os.environ, "BLAT_LOADER_WORKERS": "0", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], env=env, check=True, capture_output=True)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1"]
    launch.append(f"--master-port={_free_port()}")
    subprocess.run(
        [*launch, *common, "--out", str(tmp_path / "two")], env=env, check=True, capture_output=True, timeout=300
    )
    one, two = FrameFeatures(tmp_path / "one"), FrameFeatures(tmp_path / "two")
    assert sorted(one.ids) == sorted(two.ids) == sorted(PreparedDataset(prepared["audiocaps"][0]).ids)
    assert {p.name[:9] for p in (tmp_path / "two").glob("frames_*.h5")} == {"frames_r0", "frames_r1"}
    for audio_id in one.ids:
        np.testing.assert_allclose(
            one.frames(audio_id).astype(np.float32), two.frames(audio_id).astype(np.float32), rtol=1e-2, atol=1e-2
        )


def test_captioning_transfer_frames_equal_the_features_stage(prepared, encoder_folder, tmp_path):
    """Table 4 extracts frames in memory; they must be the `features` stage's frames exactly (only the
    tower may differ between the rows it compares)."""
    from blat_core.eval.tasks.captioning import frame_arrays

    dataset = PreparedDataset(prepared["clotho"][0])
    model, _ = load_audio_encoder(encoder_folder)
    extract(model, dataset, tmp_path / "out", FeaturesParams(["clotho"], 4, 1), torch.device("cpu"), Ranks())
    features = FrameFeatures(tmp_path / "out")
    ids = dataset.ids[:7]
    frames = frame_arrays(model, dataset, ids, 3, torch.device("cpu"))
    for audio_id, got in zip(ids, frames, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, features.frames(audio_id).astype(np.float32), rtol=1e-3, atol=1e-6)


def test_table4_reuses_the_features_stage_frames_for_the_tagger(prepared, encoder_folder, tmp_path, monkeypatch):
    """evaluate@captioning reads the tagger's frames that features@<dataset> wrote instead of extracting them
    again (repeated GPU work at paper scale); a clip missing from them is an error naming the stage to re-run."""
    from blat_core.eval.tasks import captioning

    dataset = PreparedDataset(prepared["clotho"][0])
    model, _ = load_audio_encoder(encoder_folder)
    extract(model, dataset, tmp_path / "clotho", FeaturesParams(["clotho"], 4, 1), torch.device("cpu"), Ranks())
    stored = FrameFeatures(tmp_path / "clotho")
    monkeypatch.setattr(captioning, "frame_arrays", lambda *a, **k: pytest.fail("frames were extracted again"))
    data = captioning.caption_data(dataset, "evaluation", None, 4, "cpu", training=False, stored=stored)
    for audio_id, frames in zip(data.ids, data.frames, strict=True):
        np.testing.assert_array_equal(frames, stored.frames(audio_id).astype(np.float32))
    monkeypatch.setattr(stored, "_row", {k: v for k, v in stored._row.items() if k != data.ids[0]})
    with pytest.raises(ValueError, match="re-run `dvc repro features@clotho`"):
        captioning.caption_data(dataset, "evaluation", None, 4, "cpu", training=False, stored=stored)
