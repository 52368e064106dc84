"""`blat export` and `blat_core.load_model`: the exported folder loads with one call and embeds exactly as the
pipeline's folder does, on real recordings; folders of other format versions fail clearly; the ONNX towers
match PyTorch within 1e-4 (fp32) for several batch sizes and lengths; the model card's front matter parses and
holds the metrics it was given with their coverage. (The demo's own blat_stage2: tests/test_pipeline.py.)"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

import blat_core
from blat_core.app.cli import main
from blat_core.app.model_card import build_card
from blat_core.models import portable
from tests.helpers import real_audio
from tests.helpers.tiny_models import make_models


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    make_models(root)
    out = portable.export_folder(root / "blat", root / "exported", "# card\n")
    return root, out


def _recordings(count: int = 4):
    real_audio.require()
    return real_audio.recordings()[:count]


def test_the_exported_folder_embeds_as_the_pipeline_folder(exported):
    root, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                     "tokenizer.json", "tokenizer_config.json"]  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "blat-model" and config["format_version"] == portable.FORMAT_VERSION
    assert config["text_config"]["model_type"] == "bert" and config["sample_rate"] == 16000
    ours, theirs = blat_core.load_model(out), blat_core.load_model(root / "blat")
    paths = _recordings()
    audio = ours.embed_audio(paths)
    assert audio.dtype == np.float32 and audio.shape == (len(paths), ours.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(audio, theirs.embed_audio(paths))
    texts = ["a dog barks", "a door bell rings twice", "ünïcode and emoji 🔔"]
    np.testing.assert_array_equal(ours.embed_text(texts), theirs.embed_text(texts))
    # An array at the file's own rate (any channels) is embedded as the file is: mono, resampled, 16-bit.
    samples, rate = sf.read(paths[0], dtype="float32", always_2d=True)
    from_array = ours.embed_audio([samples.T], sample_rate=rate)
    np.testing.assert_allclose(from_array, audio[:1], atol=1e-6)
    with pytest.raises(ValueError, match="sample_rate"):
        ours.embed_audio([samples.T])
    with pytest.raises(TypeError, match="list"):
        ours.embed_text("a dog barks")


def test_loading_and_embedding_open_no_connection(exported, monkeypatch):
    """No network at load time: every socket connection fails while the folder loads and embeds."""
    import socket

    _, out = exported

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = blat_core.load_model(out)
    assert model.embed_text(["a bell"]).shape == (1, model.embed_dim)
    assert model.embed_audio([np.zeros(8000, np.float32) + 0.01], sample_rate=8000).shape == (1, model.embed_dim)


def test_other_format_versions_and_foreign_folders_fail_clearly(exported, tmp_path):
    _, out = exported
    for version, said in ((portable.FORMAT_VERSION + 1, "newer than this blat-pipeline reads"),
                          (0, "older than this blat-pipeline reads"), ("1", "not a whole number")):  # fmt: skip
        folder = tmp_path / f"v{version}"
        shutil.copytree(out, folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "format_version": version}))
        with pytest.raises(portable.FormatError, match=said):
            blat_core.load_model(folder)
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(portable.FormatError, match="not a BLAT model"):
        blat_core.load_model(bert)
    with pytest.raises(portable.FormatError, match="no config.json"):
        blat_core.load_model(tmp_path / "nowhere")
    custom = tmp_path / "custom"
    shutil.copytree(out, custom)
    config = json.loads((custom / "config.json").read_text())
    config["text_config"]["auto_map"] = {"AutoModel": "evil.Model"}
    (custom / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match="own code"):
        blat_core.load_model(custom)
    truncated = tmp_path / "truncated"
    shutil.copytree(out, truncated)
    (truncated / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(portable.FormatError, match="not a readable safetensors"):
        blat_core.load_model(truncated)


def test_onnx_towers_match_pytorch(exported, tmp_path):
    import onnxruntime

    _, out = exported
    folder = tmp_path / "onnx"
    shutil.copytree(out, folder)
    loaded = blat_core.load_model(folder)
    portable.export_onnx(loaded, folder)
    worst = portable.check_onnx(loaded, folder)
    assert worst["audio"] <= 1e-4 and worst["text"] <= 1e-4
    # Shapes the export never saw: 5 real recordings at the model's rate, padded to the longest.
    session = onnxruntime.InferenceSession(str(folder / "audio.onnx"), providers=["CPUExecutionProvider"])
    from blat_core.models.inference import read_audio

    waves = [read_audio(p, loaded.sample_rate) for p in _recordings(5)]
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    batch = np.zeros((len(waves), lengths.max()), np.float32)
    for row, wave in enumerate(waves):
        batch[row, : len(wave)] = wave / 32768.0
    got = session.run(None, {"waveform": batch, "lengths": lengths})[0]
    short = [w for w in waves if len(w) <= 10 * loaded.sample_rate]  # one window each: as embed_audio
    assert len(short) == len(waves)
    np.testing.assert_allclose(got, loaded.embed_audio(waves, sample_rate=loaded.sample_rate), atol=1e-4)
    text = onnxruntime.InferenceSession(str(folder / "text.onnx"), providers=["CPUExecutionProvider"])
    tokens = loaded.tokenizer(["a bell", "an alarm clock rings in a quiet bedroom at dawn"])
    got = text.run(None, {k: v.numpy() for k, v in tokens.items()})[0]
    np.testing.assert_allclose(got, loaded.embed_text(["a bell", "an alarm clock rings in a quiet bedroom at dawn"]),
                               atol=1e-4)  # fmt: skip


def test_the_model_card_holds_the_metrics_it_finds(exported, tmp_path):
    root, _ = exported
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    coverage = {"audiocaps": {"ids": {"count": 90, "file": "metrics/ids/retrieval/audiocaps.txt", "sha256": "ab" * 32},
                              "splits": {"test": {"listed": 100, "scored": 90, "prepared": 95}}}}  # fmt: skip
    scores = {"blat": {"text_to_audio": {"R@1": 0.25, "R@5": 0.5, "R@10": 0.75, "median_rank": 4.0},
                       "audio_to_text": {"R@1": 0.2, "R@5": 0.4, "R@10": 0.6, "median_rank": 5.0}},
              "other": {"text_to_audio": {"R@1": 0.9}}}  # fmt: skip
    (metrics / "evaluate_retrieval.json").write_text(json.dumps({"retrieval": {"audiocaps": scores},
                                                                 "retrieval_coverage": coverage}))  # fmt: skip
    card = build_card(root / "blat", "blat", tmp_path, metrics, onnx=True)
    assert card.startswith("---\n")
    matter = yaml.safe_load(card.split("---\n")[1])
    assert matter["license"] == "apache-2.0" and "audio-text" in matter["tags"]
    (result,) = matter["model-index"][0]["results"]
    assert result["dataset"]["type"] == "audiocaps" and result["dataset"]["split"] == "test"
    assert result["dataset"]["args"]["clips_scored"] == 90 and result["dataset"]["args"]["coverage"] == 0.9
    values = {m["type"]: m["value"] for m in result["metrics"]}
    assert values["text_to_audio/R@10"] == 0.75 and values["audio_to_text/R@1"] == 0.2 and 0.9 not in values.values()
    assert "| audiocaps | test | text→audio R@10 | 0.7500 | 90 / 100 |" in card
    assert "not an output of a stage" in card and "audio.onnx" in card


def test_blat_export_command(exported, tmp_path, capsys):
    root, _ = exported
    out = tmp_path / "cli_export"
    assert main(["export", str(root / "blat"), "--out", str(out), "--project", str(tmp_path)]) == 0
    assert "exported" in capsys.readouterr().out
    assert (out / "README.md").read_text().startswith("---\n") and not (out / "audio.onnx").exists()
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a BLAT model folder" in capsys.readouterr().err
