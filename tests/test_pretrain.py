"""Contrastive pre-training: the loss, the exported model folder, resume after a stop, and two
processes computing exactly the single-process update."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from blat_core import compute
from blat_core.data.pairs import RetrievalSet, caption_pairs
from blat_core.data.prepared import PreparedDataset
from blat_core.distributed import Ranks
from blat_core.models.biencoder import ContrastiveLoss
from blat_core.models.blat_model import load_blat, save_blat
from blat_core.models.checkpoints import CheckpointError
from blat_core.models.embed import embed_captions, embed_clips
from blat_core.models.text.encoder import Tokenizer
from blat_core.train import checkpointing
from blat_core.train.pretrain import PretrainParams, StageSchedule, pretrain
from tests.conftest import ROOT
from tests.helpers.tiny_biencoder import make_text_folder, tiny_biencoder, tiny_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    return make_text_folder(tmp_path_factory.mktemp("text") / "tiny_bert")


def test_loss_is_symmetric_and_is_the_mean_of_both_cross_entropies():
    """Swapping audio and text leaves the loss unchanged; it equals (CE(rows) + CE(columns)) / 2."""
    generator = torch.Generator().manual_seed(0)
    audio = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    text = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    scale = torch.tensor(10.0)
    loss = ContrastiveLoss()(audio, text, scale)
    logits = scale * audio @ text.t()
    expected = (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.t(), torch.arange(6))) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert ContrastiveLoss()(text, audio, scale).item() == pytest.approx(loss.item(), rel=1e-6)
    aligned = ContrastiveLoss()(audio, audio, torch.tensor(100.0)).item()
    assert aligned < 0.05 and aligned < loss.item()


def test_logit_scale_starts_at_ln_1_over_0_07_and_respects_the_cap(text_folder):
    """exp(logit_scale) starts at 1/0.07; with a cap the scale never exceeds exp(cap)."""
    from blat_core.models.blat_model import build_biencoder

    model = tiny_biencoder(text_folder)
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-4)
    capped = build_biencoder(tiny_config(text_folder, logit_scale_max=math.log(5.0)))
    assert capped.scale().item() == pytest.approx(5.0, rel=1e-5)


def test_exported_folder_loads_to_the_same_embeddings(text_folder, prepared, tmp_path):
    """save_blat -> load_blat gives identical audio and text embeddings; a wrong key fails by name."""
    torch.manual_seed(0)
    model = tiny_biencoder(text_folder).eval()
    tokenizer = Tokenizer(text_folder, 30)
    (tmp_path / "model").mkdir()
    save_blat(tmp_path / "model", model, model.state_dict(), tiny_config(text_folder), tokenizer, {"stage": "test"})
    loaded, loaded_tokenizer, meta = load_blat(tmp_path / "model")
    assert meta == {"stage": "test"}
    dataset = PreparedDataset(prepared["audiocaps"][0])
    ids = dataset.ids[:5]
    torch.testing.assert_close(embed_clips(model, dataset, ids, 2, CPU), embed_clips(loaded, dataset, ids, 3, CPU))
    captions = ["a dog barks", "rain on a tin roof while a man speaks"]
    torch.testing.assert_close(
        embed_captions(model, tokenizer, captions, 2, CPU), embed_captions(loaded, loaded_tokenizer, captions, 1, CPU)
    )
    # The same clip embeds the same on every call (no random crop at inference).
    torch.testing.assert_close(embed_clips(loaded, dataset, ids, 5, CPU), embed_clips(loaded, dataset, ids, 5, CPU))

    from safetensors.torch import load_file, save_file

    weights = load_file(str(tmp_path / "model" / "blat.safetensors"))
    weights["audio_proj.weight_renamed"] = weights.pop("audio_proj.weight")
    save_file(weights, str(tmp_path / "model" / "blat.safetensors"))
    with pytest.raises(CheckpointError, match="audio_proj.weight"):
        load_blat(tmp_path / "model")


def _params() -> PretrainParams:
    return PretrainParams(
        batch_size=4, lr=1.0e-3, weight_decay=0.0, max_seconds=1.0, embed_dim=16, eval_batch_size=8,
        log_every=1, checkpoint_every=2, stage2=StageSchedule(steps=5, warmup_steps=1, val_every=2),
    )  # fmt: skip


def _pretrain(text_folder, prepared, scratch, curves, stop_after=None):
    compute.seed_everything(0)
    model = tiny_biencoder(text_folder)
    pairs = caption_pairs([prepared["audiocaps"][0], prepared["clotho"][0]])
    val = RetrievalSet.from_split(prepared["audiocaps"][0], "val")
    checkpointer = checkpointing.Checkpointer(scratch, "fingerprint")
    tokenizer = Tokenizer(text_folder, 30)
    params = _params()
    return pretrain(model, tokenizer, pairs, val, params, "stage2", CPU, Ranks(), checkpointer, curves, 0, stop_after)


def test_pretraining_resumes_to_the_same_weights(text_folder, prepared, tmp_path):
    """Stopped at step 2 and resumed, training keeps the same best weights and validation history."""
    whole, whole_summary = _pretrain(text_folder, prepared, tmp_path / "a", tmp_path / "live_a")
    assert [h["step"] for h in whole_summary["history"]] == [2, 4, 5]  # every val_every steps and at the end
    stopped, _ = _pretrain(text_folder, prepared, tmp_path / "b", tmp_path / "live_b", stop_after=2)
    assert stopped is None and (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    resumed, resumed_summary = _pretrain(text_folder, prepared, tmp_path / "b", tmp_path / "live_b")
    assert resumed_summary == whole_summary
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
    curve = (tmp_path / "live_b" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in curve[1:]] == ["1", "2", "3", "4", "5"]


@pytest.mark.slow
def test_two_processes_make_the_single_process_update(text_folder, tmp_path):
    """Under the launcher with BLAT_NPROC=2 (gloo): the same loss and, after one SGD step, the same weights."""
    results = {}
    for processes in (1, 2):
        env = {**os.environ, "BLAT_NPROC": str(processes), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        out = tmp_path / f"step{processes}.pt"
        command = [sys.executable, "-m", "blat_core.app.launch", str(ROOT / "tests/helpers/ddp_step.py"), str(out)]
        done = subprocess.run([*command, str(text_folder)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        results[processes] = torch.load(out, weights_only=True)
    assert results[2]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)
    one, two = results[1]["weights"], results[2]["weights"]
    changed = 0
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
        changed += int(not torch.equal(one[key], tiny_start(text_folder)[key]))
    assert changed > 10  # the step really moved the weights of both towers


_START: dict = {}


def tiny_start(text_folder) -> dict:
    if not _START:
        torch.manual_seed(0)
        _START.update(tiny_biencoder(text_folder).state_dict())
    return _START
