"""Importing the authors' BLAT checkpoint format: a synthetic file with exactly their key names and
shapes imports to the same weights; a mismatch fails naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from blat_core.models.audio.panns import panns_key
from blat_core.models.blat_model import load_blat
from blat_core.models.checkpoints import CheckpointError
from blat_core.models.official import import_official_blat
from tests.helpers.tiny_biencoder import make_text_folder, tiny_biencoder


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(our model, its official-format state dict, text folder)."""
    folder = make_text_folder(tmp_path_factory.mktemp("bert"))
    torch.manual_seed(1)
    model = tiny_biencoder(folder).eval()
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("audio_encoder.frontend."):
            continue
        if key.startswith("audio_encoder."):
            key = "audio_encoder." + panns_key(key[len("audio_encoder.") :])
        state[key] = value.clone()
    n_fft = 512  # the tiny tower is 16 kHz: n_fft 512 -> 257 rows
    state["audio_encoder.spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(n_fft // 2 + 1, 1, n_fft)
    state["audio_encoder.spectrogram_extractor.stft.conv_imag.weight"] = torch.zeros(n_fft // 2 + 1, 1, n_fft)
    state["audio_encoder.logmel_extractor.melW"] = torch.zeros(n_fft // 2 + 1, 64)
    state["text_encoder.model.embeddings.position_ids"] = torch.arange(64)[None]
    state["text_encoder.model.pooler.dense.weight"] = torch.zeros(32, 32)
    state["text_encoder.model.pooler.dense.bias"] = torch.zeros(32)
    return model, state, folder


def _save(state, path):
    torch.save({"state_dict": state, "epoch": 3}, path)
    return path


def test_import_gives_the_same_weights(source, tmp_path):
    model, state, folder = source
    dropped = import_official_blat(_save(state, tmp_path / "blat_cnn14_bertm.pth"), folder, tmp_path / "out")
    assert set(dropped) == {
        "audio_encoder.spectrogram_extractor.stft.conv_real.weight",
        "audio_encoder.spectrogram_extractor.stft.conv_imag.weight",
        "audio_encoder.logmel_extractor.melW",
        "text_encoder.model.embeddings.position_ids",
        "text_encoder.model.pooler.dense.weight",
        "text_encoder.model.pooler.dense.bias",
    }
    loaded, _, meta = load_blat(tmp_path / "out")
    assert meta["imported_from"] == "blat_cnn14_bertm.pth" and loaded.audio_encoder.sample_rate == 16000
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert set(ours) == set(theirs)
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("audio_encoder.conv_block3.bn1.weight"), "audio_encoder.conv_block3.bn1.weight"),
        (lambda s: s.pop("text_encoder.model.encoder.layer.1.output.dense.bias"),
         "text_encoder.model.encoder.layer.1.output.dense.bias"),
        (lambda s: s.update({"text_proj.weight": torch.zeros(16, 33)}), "text_proj.weight"),
        (lambda s: s.update({"audio_encoder.fc1.weight": torch.zeros(64, 63)}), "fc1.weight"),
        (lambda s: s.update({"audio_encoder.extra.weight": torch.zeros(1)}), "audio_encoder.extra.weight"),
        (lambda s: s.update({"classifier.weight": torch.zeros(1)}), "classifier.weight"),
        (lambda s: s.pop("logit_scale"), "logit_scale"),
    ],
)  # fmt: skip
def test_a_mismatch_fails_naming_the_key(source, tmp_path, change, message):
    _, state, folder = source
    state = dict(state)
    change(state)
    with pytest.raises(CheckpointError, match=message.replace(".", r"\.")):
        import_official_blat(_save(state, tmp_path / "bad.pth"), folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_file_must_be_the_authors_format(tmp_path, source):
    torch.save({"model": {}}, tmp_path / "panns.pth")
    with pytest.raises(CheckpointError, match="'state_dict'"):
        import_official_blat(tmp_path / "panns.pth", source[2], tmp_path / "out")


def test_evaluation_scores_an_imported_model_given_by_path(source, tmp_path, prepared):
    """A task's models entry with a slash is a folder path: the imported model is scored as it is."""
    from blat_core.eval.tasks.classification import ZeroShotTask, zeroshot

    _, state, folder = source
    import_official_blat(_save(state, tmp_path / "blat_cnn14_bertm.pth"), folder, tmp_path / "imported" / "official")
    esc50 = prepared["esc50"][0]
    task = ZeroShotTask(models=[str(tmp_path / "imported" / "official")], datasets=[esc50.name])
    result = zeroshot(task, tmp_path / "no_models_here", esc50.parent, torch.device("cpu"), None)
    scores = result[esc50.name][str(tmp_path / "imported" / "official")]
    assert 0.0 <= scores["accuracy"] <= 1.0 and scores["chance_accuracy"] > 0


def test_model_entries_name_folders_and_scratch_folders_stay_flat(tmp_path):
    from blat_core.models.towers import model_folder, scratch_name

    assert model_folder(tmp_path, "blat_stage2") == tmp_path / "blat_stage2"
    assert model_folder(tmp_path, "data/imported/blat_official") == Path("data/imported/blat_official")
    assert scratch_name("clotho", "/models/imported/blat") == "clotho_models_imported_blat"
    assert scratch_name("audiocaps", "tagger") == "audiocaps_tagger"
