"""Tagger stage and the shared training loop: it learns, it is deterministic on CPU, and a killed
run resumes to exactly the weights of an uninterrupted one (only with a matching fingerprint)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from blat_core.data.prepared import read_classes
from blat_core.models.audio.encoder import AudioEncoderParams, build_audio_encoder, load_audio_encoder
from blat_core.models.audio.panns import panns_key
from blat_core.train import sampling
from blat_core.train.tagger import TaggerParams, run_tagger
from stages.tagger import CODE
from tests.conftest import ROOT, project_params

ENCODER = AudioEncoderParams(name="cnn14", channels=[4, 8, 16, 32, 64, 64])
TINY = TaggerParams(
    checkpoint="",
    steps=12,
    batch_size=8,
    lr=3.0e-3,
    weight_decay=0.0,
    warmup_steps=2,
    max_seconds=1.5,
    mixup_alpha=0.0,
    balanced_sampling=False,
    log_every=2,
    checkpoint_every=3,
    seed=3,
)


def _run(prepared, tmp_path: Path, name: str, tagger=TINY, stop_after=None, scratch=None):
    return run_tagger(
        tagger,
        ENCODER,
        prepared["audioset"][0],
        tmp_path / name / "model",
        tmp_path / name / "live",
        scratch or tmp_path / name / "scratch",
        workers=0,
        code=CODE,
        stop_after=stop_after,
    )


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model" / "tagger.safetensors"))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_straight_runs_are_identical_on_cpu(prepared, tmp_path):
    first, second = _run(prepared, tmp_path, "a"), _run(prepared, tmp_path, "b")
    assert first == second
    _assert_same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))


def test_stop_and_resume_gives_identical_weights(prepared, tmp_path):
    """N steps straight == N/2 steps, stop, resume from the scratch checkpoint for the rest."""
    straight = _run(prepared, tmp_path, "straight")
    assert _run(prepared, tmp_path, "resumed", stop_after=6) == {"stopped_at": 6}
    assert (tmp_path / "resumed" / "scratch" / "checkpoint" / "state.json").is_file()
    assert not (tmp_path / "resumed" / "model").exists()
    assert _run(prepared, tmp_path, "resumed") == straight
    _assert_same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    assert not (tmp_path / "resumed" / "scratch" / "checkpoint").exists()  # cleared once done
    loss = (tmp_path / "resumed" / "live" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"]
    steps = [int(line.split("\t")[0]) for line in loss[1:]]
    assert steps == list(range(2, 13, 2))  # the curve continues, no step logged twice


def test_checkpoint_of_another_configuration_is_not_resumed(prepared, tmp_path):
    scratch = tmp_path / "shared_scratch"
    _run(prepared, tmp_path, "other", tagger=dataclasses.replace(TINY, lr=1.0e-3), stop_after=6, scratch=scratch)
    resumed = _run(prepared, tmp_path, "this", scratch=scratch)
    straight = _run(prepared, tmp_path, "straight")
    assert resumed == straight
    _assert_same(_weights(tmp_path / "this"), _weights(tmp_path / "straight"))


@pytest.mark.slow
def test_killed_process_resumes_to_the_same_weights(prepared, tmp_path):
    """SIGKILL the tagger stage mid-run; running it again finishes with the uninterrupted weights."""
    tagger = dataclasses.replace(TINY, steps=40, checkpoint_every=4)
    params = project_params()
    params["tagger"] = dataclasses.asdict(tagger)
    params["audio_encoder"] = dataclasses.asdict(ENCODER)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = [
        sys.executable,
        str(ROOT / "stages" / "tagger.py"),
        "--audioset",
        str(prepared["audioset"][0]),
        "--out",
        "model",
        "--metrics",
        "m.json",
        "--curves",
        "live",
        "--scratch",
        "scratch",
    ]
    env = {**os.environ, "BLAT_LOADER_WORKERS": "0"}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "scratch" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "model").exists()
    subprocess.run(args, cwd=tmp_path, env=env, check=True, capture_output=True)
    # The uninterrupted run, in a process of its own too (same thread count, same kernels).
    straight = [*args[:4], "--out", "straight", "--metrics", "s.json", "--curves", "s_live", "--scratch", "s_scratch"]
    subprocess.run(straight, cwd=tmp_path, env=env, check=True, capture_output=True)
    _assert_same(
        load_file(str(tmp_path / "model" / "tagger.safetensors")),
        load_file(str(tmp_path / "straight" / "tagger.safetensors")),
    )
    assert (tmp_path / "m.json").read_text() == (tmp_path / "s.json").read_text()


@pytest.mark.slow
def test_tagger_learns_on_the_tiny_corpus(prepared, tmp_path):
    """mAP on the AudioSet eval split is far above the label-frequency (chance) baseline."""
    tagger = dataclasses.replace(
        TINY, steps=80, batch_size=16, lr=3.0e-3, warmup_steps=5, checkpoint_every=1000, log_every=20
    )
    metrics = _run(prepared, tmp_path, "learn", tagger=tagger)["tagger"]["audioset_eval"]
    print(f"tiny tagger mAP {metrics['mAP']:.3f} vs label-frequency {metrics['label_frequency_mAP']:.3f}")
    assert metrics["mAP"] > 2 * metrics["label_frequency_mAP"]
    model, meta = load_audio_encoder(tmp_path / "learn" / "model")
    assert meta["source"] == "trained" and model.head.out_features == len(meta["classes"])


def test_balanced_sampling_draws_classes_uniformly():
    """Balanced batches pick a class uniformly (among those with clips), then a clip of it: with 100, 1 and 3 clips
    in three classes (and one empty), each class gets about a third of 3,000 picks, where drawing clips uniformly
    would give the large class 96 %."""
    members = [np.arange(100), np.array([], dtype=int), np.array([100]), np.array([101, 102, 103])]
    picks = np.concatenate([sampling.balanced_batches(0, step, members, 6) for step in range(500)])
    assert set(picks.tolist()) <= set(range(104))
    shares = [np.isin(picks, m).mean() for m in (members[0], members[2], members[3])]
    assert all(0.29 < share < 0.38 for share in shares), shares
    assert len(set(picks[np.isin(picks, members[0])].tolist())) > 90  # within a class, every clip comes up


def test_mixup_mixes_audio_and_targets_with_one_weight(monkeypatch):
    """With mixup_alpha > 0 a step trains on lam·x + (1 - lam)·x_rolled and the targets mixed with the same lam
    (0 < lam < 1), covering the longer of each pair's lengths; with 0 it trains on the batch as it is."""
    import torch.nn.functional as functional

    from blat_core.data import batching
    from blat_core.train import tagger as tagger_module

    torch.manual_seed(0)
    model = build_audio_encoder(ENCODER.config(16000, num_classes=3))
    waves = (torch.randn(4, 16000) * 3000).to(torch.int16)
    lengths, indices = torch.tensor([16000, 12000, 16000, 8000]), torch.arange(4)
    targets = torch.eye(4, 3)
    seen = {}
    real_forward, real_loss = model.forward, functional.binary_cross_entropy_with_logits
    monkeypatch.setattr(model, "forward", lambda audio, lens: seen.update(audio=audio, lengths=lens) or
                        real_forward(audio, lens))  # fmt: skip
    monkeypatch.setattr(functional, "binary_cross_entropy_with_logits",
                        lambda logits, target: seen.update(target=target) or real_loss(logits, target))  # fmt: skip
    audio = batching.to_device_float(waves, torch.device("cpu"))
    for alpha in (0.5, 0.0):
        np.random.seed(1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        params = dataclasses.replace(TINY, mixup_alpha=alpha)
        tagger_module.tagger_step(model, optimizer, (waves, lengths, indices), targets, params, torch.device("cpu"))
        if alpha == 0:
            assert torch.equal(seen["audio"], audio) and torch.equal(seen["target"], targets)
            continue
        lam = float((seen["target"][0, 0]).item())  # row 0 holds class 0 alone before mixing with row 3
        assert 0.0 < lam < 1.0
        torch.testing.assert_close(seen["audio"], lam * audio + (1 - lam) * audio.roll(1, dims=0))
        torch.testing.assert_close(seen["target"], lam * targets + (1 - lam) * targets.roll(1, dims=0))
        assert seen["lengths"].tolist() == [16000, 16000, 16000, 16000]


def test_mixup_and_balanced_sampling_train(prepared, tmp_path):
    """The stage trains with both options on."""
    tagger = dataclasses.replace(TINY, steps=4, balanced_sampling=True, mixup_alpha=0.5)
    assert _run(prepared, tmp_path, "options", tagger=tagger)["tagger"]["source"] == "trained"


def test_stage_imports_a_panns_format_checkpoint(prepared, tmp_path):
    """With tagger.checkpoint set, the stage imports PANNs-named weights instead of training, then evaluates."""
    classes = read_classes(prepared["audioset"][0])
    torch.manual_seed(1)
    source = build_audio_encoder(ENCODER.config(16000, num_classes=len(classes)))
    official = {panns_key(k): v for k, v in source.state_dict().items() if not k.startswith("frontend.")}
    torch.save({"model": official}, tmp_path / "panns.pth")
    tagger = dataclasses.replace(TINY, checkpoint=str(tmp_path / "panns.pth"))
    metrics = _run(prepared, tmp_path, "imported", tagger=tagger)["tagger"]
    assert metrics["source"] == "imported" and not (tmp_path / "imported" / "scratch").exists()
    _assert_same(_weights(tmp_path / "imported"), source.state_dict())
