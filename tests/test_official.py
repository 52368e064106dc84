"""Importing the authors' BLAT checkpoint format: a synthetic file with exactly their key names and
shapes imports to the same weights; a mismatch fails naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from blat_core.models.audio.panns import panns_key
from blat_core.models.blat_model import load_blat
from blat_core.models.checkpoints import CheckpointError
from blat_core.models.official import import_official_blat
from tests.conftest import ROOT
from tests.helpers.authors_blat import authors_state, medium_text_folder
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


# ---------------------------------------------------------------- the authors' file as their code writes it
AUTHORS = json.loads((ROOT / "tests" / "fixtures" / "authors_blat_state_dict.json").read_text())


def _by_hand(state: dict[str, torch.Tensor], text_folder: Path):
    """Our bi-encoder with the same weights, mapped key by key here (not by the importer): conv_block<n> is our
    blocks.<n-1>; the front end is our own; the pooler and position_ids have no place in our model."""
    from blat_core.models.blat_model import build_biencoder

    config = {"audio": {"name": "cnn14", "sample_rate": 32000, "channels": [64, 128, 256, 512, 1024, 2048],
                        "num_classes": 0},
              "text": {"name": "bert", "folder": str(text_folder), "pretrained": False, "max_tokens": 30},
              "embed_dim": 1024, "logit_scale_init": 0.0, "logit_scale_max": None}  # fmt: skip
    model = build_biencoder(config).eval()
    mapped = {k: v for k, v in model.state_dict().items() if k.startswith("audio_encoder.frontend.")}
    for key, value in state.items():
        if "melspec_extractor" in key or "pooler" in key or key.endswith("position_ids"):
            continue
        for block in range(1, 7):
            key = key.replace(f"audio_encoder.conv_block{block}.", f"audio_encoder.blocks.{block - 1}.")
        mapped[key] = value
    model.load_state_dict(mapped, strict=True)
    return model


@pytest.mark.parametrize("with_position_ids", [False, True], ids=["transformers-4.31+", "transformers-2023"])
def test_the_authors_checkpoint_imports_and_embeds_like_the_same_weights_by_hand(tmp_path, capsys,
                                                                                  with_position_ids):  # fmt: skip
    """A random-weight file with exactly the key list the authors' AudioTextClip has (recorded from their code),
    saved as their loader reads it ({"state_dict": ...}), imports through `blat import-blat` with no
    --sample-rate; its audio and text embeddings equal our model's with the same weights mapped by hand."""
    from blat_core.app import cli
    from blat_core.models.embed import embed_captions

    text_folder = medium_text_folder(tmp_path / "bert-medium")
    state = authors_state(with_position_ids)
    torch.save({"state_dict": state}, tmp_path / "blat_cnn14_bertm.pth")
    assert cli.main(["import-blat", str(tmp_path / "blat_cnn14_bertm.pth"), "--text-folder", str(text_folder),
                     "--out", str(tmp_path / "imported")]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "audio_encoder.melspec_extractor.mel_scale.fb" in said and "pooler.dense.weight" in said
    assert ("embeddings.position_ids" in said) == with_position_ids
    imported, tokenizer, meta = load_blat(tmp_path / "imported")
    assert imported.audio_encoder.sample_rate == 32000 and imported.embed_dim == 1024
    reference = _by_hand(state, text_folder)
    wave = 0.1 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(5))
    lengths = torch.tensor([32000, 24000])
    with torch.no_grad():
        torch.testing.assert_close(imported.encode_audio(wave, lengths), reference.encode_audio(wave, lengths),
                                   rtol=0, atol=0)  # fmt: skip
    captions = ["a dog barks while rain falls", "an engine idles"]
    torch.testing.assert_close(embed_captions(imported, tokenizer, captions, 2, "cpu"),
                               embed_captions(reference, tokenizer, captions, 2, "cpu"), rtol=0, atol=0)  # fmt: skip


def test_the_recorded_key_list_is_the_authors_model():
    """The fixture's facts as SPEC §2 states them (so an edit of the fixture cannot drift from the spec)."""
    keys = AUTHORS["keys"]
    assert keys["audio_encoder.melspec_extractor.spectrogram.window"] == [[1024], "float32"]
    assert keys["audio_encoder.melspec_extractor.mel_scale.fb"] == [[513, 64], "float32"]
    assert keys["audio_proj.weight"][0] == [1024, 2048] and keys["text_proj.weight"][0] == [1024, 512]
    assert keys["logit_scale"] == [[], "float32"] and "text_encoder.model.pooler.dense.weight" in keys
    assert sum(k.startswith("text_encoder.model.encoder.layer.") for k in keys) == 8 * 16
    torchlibrosa = ("audio_encoder.spectrogram_extractor", "audio_encoder.logmel_extractor")
    assert not any(k.startswith(torchlibrosa) for k in keys)
