"""The `blat` command line on tiny models and a folder of audio files: every command, its errors, --help."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from blat_core.app import cli
from blat_core.models.blat_model import load_blat, save_blat
from blat_core.models.embed import embed_captions
from blat_core.models.text.encoder import Tokenizer
from tests.conftest import ROOT
from tests.helpers.tiny_biencoder import tiny_config
from tests.helpers.tiny_models import make_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """Six readable files at several rates and channel counts (one 25 s long), one corrupt, one text file."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    for i, (rate, seconds, channels) in enumerate([(16000, 2, 1), (22050, 3, 2), (44100, 1, 1), (8000, 2, 1),
                                                   (32000, 25, 1), (48000, 1.5, 2)]):  # fmt: skip
        samples = (0.1 * rng.standard_normal((int(rate * seconds), channels))).astype(np.float32)
        (folder / ("sub" if i % 2 else "")).mkdir(exist_ok=True)
        sf.write(folder / ("sub" if i % 2 else "") / f"clip{i}.{'flac' if i % 2 else 'wav'}", samples, rate)
    (folder / "broken.wav").write_bytes(b"RIFF not really audio")
    (folder / "notes.txt").write_text("not audio")
    return folder


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_embed_is_deterministic_and_counts_unreadable_files(models, audio_dir, tmp_path, capsys):
    assert run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "a.parquet", "--batch-size", 3) == 0
    assert "embedded 6 files" in capsys.readouterr().out
    assert run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "b.parquet", "--batch-size", 5) == 0
    paths, first, meta = cli.read_index(tmp_path / "a.parquet")
    _, second, _ = cli.read_index(tmp_path / "b.parquet")
    assert len(paths) == 6 and "broken.wav" not in paths and meta["skipped"] == {"unreadable_audio": 1}
    np.testing.assert_allclose(first, second, atol=1e-5)  # other batches, same embeddings
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    table = pq.read_table(tmp_path / "a.parquet").to_pydict()
    long = table["path"].index("clip4.wav")
    assert table["windows"][long] == 3  # 25 s in 10 s windows: 0-10, 10-20 and the last 10 s


def test_windows_cover_the_clip_and_are_fixed():
    wave = np.arange(25)
    parts = cli.windows(wave, 10)
    assert [p[0] for p in parts] == [0, 10, 15] and all(len(p) == 10 for p in parts)
    assert len(cli.windows(np.arange(7), 10)) == 1 and len(cli.windows(np.arange(20), 10)) == 2


def test_search_ranks_by_cosine(models, audio_dir, tmp_path, capsys):
    run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "i.parquet")
    capsys.readouterr()
    assert run("search", "a dog barks", "rain on a roof", "--index", tmp_path / "i.parquet", "-k", 3) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == '"a dog barks"' and out[4] == '"rain on a roof"' and len(out) == 8
    paths, audio, _ = cli.read_index(tmp_path / "i.parquet")
    model, tokenizer, _ = load_blat(models / "blat")
    query = embed_captions(model, tokenizer, ["a dog barks"], 1, "cpu").numpy()[0]
    assert out[1].split()[-1] == paths[int(np.argmax(audio @ query))]
    assert run("search", "x", "--index", tmp_path / "missing.parquet") == 2
    assert "not found" in capsys.readouterr().err


def test_classify_writes_the_argmax_label(models, audio_dir, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("# classes\ndog_bark\nrain\n\nspeech\n")
    assert run("classify", audio_dir, "--labels", labels, "--model", models / "blat", "--out", tmp_path / "p.csv") == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 6 and {r["label"] for r in rows} <= {"dog_bark", "rain", "speech"}
    run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "i.parquet")
    assert run("classify", tmp_path / "i.parquet", "--labels", labels, "--model", models / "blat",
               "--out", tmp_path / "q.csv") == 0  # fmt: skip
    assert [r["label"] for r in rows] == [r["label"] for r in csv.DictReader((tmp_path / "q.csv").open())]
    labels.write_text("only one\n")
    assert run("classify", audio_dir, "--labels", labels, "--model", models / "blat") == 2
    assert "at least 2" in capsys.readouterr().err


def test_classify_by_a_fine_tuned_head_without_labels(models, audio_dir, tmp_path, capsys):
    """A model folder with a classifier beside it (finetuned@<name>): `blat classify` without --labels writes each
    file's most probable class; the probability is the mean over windows of the head's softmax. A head whose shape
    does not fit the tower, an index, or a plain model folder without --labels are one error each."""
    import shutil

    from blat_core.models.classifier import load_classifier, save_classifier

    folder = tmp_path / "tuned"
    shutil.copytree(models / "blat", folder)
    width = load_blat(folder)[0].audio_encoder.embedding_dim
    torch.manual_seed(0)
    save_classifier(folder, torch.nn.Linear(width, 3), ["dog", "rain", "speech"], False, "mine", {})
    assert run("classify", audio_dir, "--model", folder, "--out", tmp_path / "h.csv") == 0
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert len(rows) == 6 and {r["label"] for r in rows} <= {"dog", "rain", "speech"}
    assert "fine-tuned single-label classifier (3 classes)" in capsys.readouterr().out
    model = load_classifier(folder)
    clip = sorted(audio_dir.glob("clip0.wav"))[0]
    wave = torch.from_numpy(sf.read(clip, dtype="float32")[0])[None]
    with torch.no_grad():
        probs = model.encode_audio(wave, torch.tensor([wave.shape[1]]))[0]
    row = next(r for r in rows if r["path"] == "clip0.wav")
    assert row["label"] == model.classes[int(probs.argmax())]
    assert abs(float(row["score"]) - float(probs.max())) < 1e-3
    from blat_core.models.portable import export_folder

    export_folder(folder, tmp_path / "exported", card="card")  # the head travels with the exported tower
    assert run("classify", audio_dir, "--model", tmp_path / "exported", "--out", tmp_path / "e.csv") == 0
    assert list(csv.DictReader((tmp_path / "e.csv").open())) == rows
    assert run("classify", audio_dir, "--model", models / "blat") == 2
    assert "no fine-tuned classifier" in capsys.readouterr().err
    save_classifier(folder, torch.nn.Linear(width + 1, 3), ["dog", "rain", "speech"], False, "mine", {})
    assert run("classify", audio_dir, "--model", folder) == 2
    assert "does not fit its classes and the audio tower" in capsys.readouterr().err


def test_caption_with_given_and_predicted_tags(models, audio_dir, tmp_path, capsys):
    base = ["caption", audio_dir, "--captioner", models / "captioner", "--tagger", models / "tagger"]
    assert run(*base, "--out", tmp_path / "c.csv") == 0
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert len({r["path"] for r in rows}) == 6 and all(r["tags"] for r in rows)  # predicted: at least the top tag
    # One caption per 10 s window: the 25 s file has three (0-10, 10-20 and the last 10 s), the others one each.
    assert [(r["start"], r["end"]) for r in rows if r["path"] == "clip4.wav"] == [
        ("0.000", "10.000"), ("10.000", "20.000"), ("15.000", "25.000")]  # fmt: skip
    assert len(rows) == 8 and {(r["start"], r["end"]) for r in rows if r["path"] == "clip0.wav"} == {("0.000", "2.000")}
    assert run(*base, "--tags", "Dog; /m/rain", "--out", tmp_path / "d.csv") == 0
    assert {r["tags"] for r in csv.DictReader((tmp_path / "d.csv").open())} == {"Dog; Rain"}
    assert run(*base, "--tags", "Unicorn") == 2
    assert "unknown tag 'Unicorn'" in capsys.readouterr().err
    assert run("caption", audio_dir, "--captioner", models / "blat", "--tagger", models / "tagger") == 2


def test_bad_paths_fail_with_one_line(models, tmp_path, capsys):
    assert run("embed", tmp_path / "nowhere", "--model", models / "blat", "--out", tmp_path / "x.parquet") == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run("embed", tmp_path / "empty", "--model", models / "blat", "--out", tmp_path / "x.parquet") == 2
    assert "no audio files" in capsys.readouterr().err
    assert run("embed", tmp_path / "empty", "--model", tmp_path, "--out", tmp_path / "x.parquet") == 2
    assert "not a BLAT model folder" in capsys.readouterr().err


def test_doctor_checks_this_project(capsys):
    assert run("doctor", "--project", ROOT) == 0
    out = capsys.readouterr().out
    for check in ("java", "gpu", "free disk", "params", "dataset esc50", "text encoder", "stage tagger",
                  "stage evaluate@captioning"):  # fmt: skip
        assert check in out, check


@pytest.mark.parametrize("params", ["params.yaml", "params.paper.yaml"])
def test_doctor_on_a_fresh_clone_checks_the_stages_of_the_file_given(tmp_path, capsys, params):
    """Before anything ran, a stage's inputs that an upstream stage makes (scan's data/sources/<ds>.json inside
    its output folder, synthesize's captions.parquet) are not reported as missing: no stage line says FAIL. The
    stages are those of the file checked: a `finetuned.<name>` entry only it has gives a `finetuned@<name>` line,
    and one only the other file has is not listed."""
    import shutil

    import yaml

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if not name.startswith(("data/", "metrics/")) or name.startswith("data/id_lists/"):  # as a clone has them
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)  # a clone is a git work tree (DVC needs one)
    other = "params.paper.yaml" if params == "params.yaml" else "params.yaml"
    for name, kept in ((params, "checked"), (other, "unchecked")):
        document = yaml.safe_load((tmp_path / name).read_text())
        document["finetuned"] = {f"{kept}_esc50": {"model": "blat_stage2", "dataset": "esc50"}}
        (tmp_path / name).write_text(yaml.safe_dump(document, sort_keys=False))
    assert run("doctor", "--project", tmp_path, "--params", params) == 0
    out = capsys.readouterr().out
    stage_lines = [line for line in out.splitlines() if " stage " in f" {line[6:]}"]
    assert len(stage_lines) > 20 and not [line for line in stage_lines if line.startswith("FAIL")], out
    stages = {line.split()[2] for line in stage_lines}
    assert "finetuned@checked_esc50" in stages and "finetuned@unchecked_esc50" not in stages, sorted(stages)


def test_every_command_has_help():
    for command in ("embed", "search", "classify", "caption", "export", "mteb", "import-blat", "doctor"):
        result = subprocess.run([sys.executable, "-m", "blat_core.app.cli", command, "--help"], capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert result.returncode == 0 and "usage: blat" in result.stdout, command


def test_library_embedding_of_files_matches_the_index(models, audio_dir, tmp_path):
    """The README's three lines (load_blat, embed_files, embed_captions) give the CLI's embeddings."""
    from blat_core.models.inference import embed_files

    run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "i.parquet")
    paths, index, _ = cli.read_index(tmp_path / "i.parquet")
    model, tokenizer, _ = load_blat(models / "blat")
    audio = embed_files(model, [audio_dir / p for p in paths[:3]])
    np.testing.assert_allclose(audio.numpy(), index[:3], atol=1e-5)
    similarity = audio @ embed_captions(model, tokenizer, ["a dog barks"], 1, "cpu").T
    assert similarity.shape == (3, 1) and float(similarity.abs().max()) <= 1.0 + 1e-5
    with pytest.raises(ValueError, match="unreadable_audio"):
        embed_files(model, [audio_dir / "broken.wav"])


def test_commands_on_the_tiny_corpus(models, tiny_corpus, tmp_path, capsys):
    """embed -> search -> classify on the tiny demo's ESC-50 folder, labels from its own metadata."""
    audio = tiny_corpus / "esc50" / "audio"
    rows = list(csv.DictReader((tiny_corpus / "esc50" / "meta" / "esc50.csv").open()))
    (tmp_path / "labels.txt").write_text("\n".join(sorted({r["category"] for r in rows})) + "\n")
    assert run("embed", audio, "--model", models / "blat", "--out", tmp_path / "esc.parquet") == 0
    paths, embeddings, _ = cli.read_index(tmp_path / "esc.parquet")
    assert sorted(paths) == sorted(r["filename"] for r in rows)
    capsys.readouterr()
    assert run("search", "a dog barks", "--index", tmp_path / "esc.parquet", "-k", 2) == 0
    hits = [line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(hits) == 2 and set(hits) <= set(paths)
    assert run("classify", tmp_path / "esc.parquet", "--labels", tmp_path / "labels.txt", "--model", models / "blat",
               "--out", tmp_path / "p.csv") == 0  # fmt: skip
    predicted = {r["path"]: r["label"] for r in csv.DictReader((tmp_path / "p.csv").open())}
    assert set(predicted) == set(paths) and set(predicted.values()) <= {r["category"] for r in rows}


def test_a_folder_streams_through_in_blocks_with_the_same_result(models, audio_dir, tmp_path, monkeypatch):
    """Decoding in tiny blocks (each file resampled piece by piece, windows cut from the stream) gives the
    whole-file result."""
    import blat_core.data.audio as audio

    assert run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "whole.parquet") == 0
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 1000)  # every file in many blocks, resampled across them
    assert run("embed", audio_dir, "--model", models / "blat", "--out", tmp_path / "chunked.parquet",
               "--window-seconds", "10") == 0  # fmt: skip
    whole_paths, whole, _ = cli.read_index(tmp_path / "whole.parquet")
    chunked_paths, chunked, meta = cli.read_index(tmp_path / "chunked.parquet")
    assert chunked_paths == whole_paths and meta["skipped"] == {"unreadable_audio": 1}
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def _other_model(models, embed_dim: int, seed: int):
    """A second tiny BLAT model folder beside `models` (another seed and, optionally, another width)."""
    from blat_core.models.blat_model import build_biencoder

    folder = models / f"other_{embed_dim}_{seed}"
    if not folder.is_dir():
        text_folder = models / "text_src"
        config = {**tiny_config(text_folder), "embed_dim": embed_dim}
        torch.manual_seed(seed)
        model = build_biencoder(config).eval()
        folder.mkdir()
        save_blat(folder, model, model.state_dict(), config, Tokenizer(text_folder, 30), {})
    return folder


def test_search_and_classify_refuse_an_index_of_another_model(models, audio_dir, tmp_path, capsys):
    """An index scored by another model (same width, other weights; or another width) exits 2 with one line
    naming both models, never a matmul traceback or meaningless scores."""
    index = tmp_path / "index.parquet"
    assert run("embed", audio_dir, "--model", models / "blat", "--out", index) == 0
    labels = tmp_path / "labels.txt"
    labels.write_text("dog\nrain\n")
    capsys.readouterr()
    for other, expected in ((_other_model(models, 16, 1), "embedded by another model"),
                            (_other_model(models, 24, 0), "16-d embeddings")):  # fmt: skip
        assert run("search", "a dog", "--index", index, "--model", other) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
        assert run("classify", index, "--labels", labels, "--model", other) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert run("search", "a dog", "--index", index, "--model", models / "blat") == 0  # its own model still works


def test_import_blat_of_a_random_or_empty_file_is_one_line(models, tmp_path, capsys):
    """`blat import-blat` on a file that is not a PyTorch checkpoint exits 2 with one line naming it."""
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    for name in ("empty.pth", "random.pth"):
        code = run("import-blat", tmp_path / name, "--text-folder", models / "text_src", "--out", tmp_path / "out")
        err = capsys.readouterr().err
        assert code == 2 and f"{name} is not a readable PyTorch BLAT checkpoint" in err, err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_embed_skips_fifos_and_link_loops(models, audio_dir, tmp_path, capsys):
    """A FIFO named *.wav, a symlink loop and a dangling link in the folder are skipped and counted (a FIFO
    used to block the read forever)."""
    import os
    import shutil

    folder = tmp_path / "audio"
    shutil.copytree(audio_dir, folder)
    os.mkfifo(folder / "pipe.wav")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    (folder / "gone.wav").symlink_to(folder / "nowhere.wav")
    assert run("embed", folder, "--model", models / "blat", "--out", tmp_path / "a.parquet") == 0
    _, _, meta = cli.read_index(tmp_path / "a.parquet")
    assert meta["skipped"] == {"unreadable_audio": 1, "not_regular_file": 1, "broken_link": 2}
