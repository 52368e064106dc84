"""Your own data (docs/your-data.md): the generic `captions` and `labels` recipes on real recordings in a user's
layout, the seeded split, the errors of the common mistakes, and the evaluation tasks and report accepting them.
The whole path through `dvc repro` is tests/test_pipeline.py::test_your_own_data_through_dvc_repro."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from blat_core.data.datasets import generic
from blat_core.data.datasets.common import MetadataError
from blat_core.data.prepare import PrepareError, PrepareParams, prepare_dataset
from blat_core.params import ParamsError, from_dict
from tests.conftest import project_params
from tests.helpers import real_audio
from tests.test_real_layouts import run_scan_and_prepare


@pytest.fixture(scope="module")
def recordings_available():
    real_audio.require()


def _params(datasets: dict) -> PrepareParams:
    section = {**project_params()["prepare"], "datasets": datasets}
    return from_dict(PrepareParams, section, "prepare")


def _prepare(name: str, entry: dict, tmp_path: Path) -> tuple[dict, Path]:
    out = tmp_path / "prepared" / name
    out.mkdir(parents=True)
    return prepare_dataset(name, _params({name: entry}), {}, out, workers=1), out


def _manifest(folder: Path) -> dict:
    return pq.read_table(folder / "manifest.parquet").to_pydict()


def test_a_captions_folder_and_a_labels_folder_prepared_by_params_only(recordings_available, tmp_path):
    """scan + prepare on a user's folders: a BOM and a capitalised header, captions merged per file, FLAC and WAV
    in sub-folders, too-short recordings counted, the drawn split written out; single-label decided from data."""
    captions = real_audio.build_user_captions(tmp_path / "mine" / "my_sounds")
    labels = real_audio.build_user_labels(tmp_path / "mine" / "my_labels")
    datasets = {
        "my_sounds": {"recipe": "captions", "root": str(tmp_path / "mine" / "my_sounds"), "metadata": "captions.csv"},
        "my_labels": {"recipe": "labels", "root": str(tmp_path / "mine" / "my_labels"), "metadata": "labels.tsv",
                      "test_fraction": 0.34, "val_fraction": 0.0},
    }  # fmt: skip
    metrics = run_scan_and_prepare(tmp_path / "mine", tmp_path, datasets)
    assert metrics["my_sounds"]["rows_read"] == captions["rows_read"] == 54
    assert metrics["my_sounds"]["clips"] == 25 and metrics["my_sounds"]["skipped"] == {"too_short": 2}
    manifest = _manifest(tmp_path / "prepared" / "my_sounds")
    assert sorted({len(c) for c in manifest["captions"]}) == [1, 2, 3]
    assert {s: manifest["split"].count(s) for s in ("train", "val", "test")} == {"train": 17, "val": 3, "test": 5}
    assert all(t == (s == "train") for s, t in zip(manifest["split"], manifest["trainable"], strict=True))
    with open(tmp_path / "prepared" / "my_sounds" / "assigned_splits.csv", newline="") as handle:
        written = {row["file"]: row["split"] for row in csv.DictReader(handle)}
    assert len(written) == captions["files"]  # the two skipped recordings keep their drawn split too
    assert all(written[a] == s for a, s in zip(manifest["audio_id"], manifest["split"], strict=True))

    info = yaml.safe_load((tmp_path / "prepared" / "my_labels" / "dataset.json").read_text())
    assert info["recipe"] == "labels" and info["split"] == "drawn"
    assert info["classification"] == {"multi_label": False, "primary_metric": "accuracy", "test_split": "test",
                                      "train_splits": ["train", "val"], "ontology_classes": False}  # fmt: skip
    assert set(info["classes"]) <= set(labels["classes"])
    manifest = _manifest(tmp_path / "prepared" / "my_labels")
    for label in info["classes"]:  # the stratified draw leaves every label a training clip
        assert any(s == "train" and ls == [label] for s, ls in zip(manifest["split"], manifest["labels"], strict=True))


def test_the_drawn_split_depends_only_on_the_seed_and_the_names():
    files = [f"clip_{i}.wav" for i in range(40)]
    draw = generic.SplitDraw(seed=3, val_fraction=0.1, test_fraction=0.2)
    first = generic.draw_splits(files, {}, draw)
    assert first == generic.draw_splits(list(reversed(files)), {}, draw)
    assert sorted(first.values()).count("test") == 8 and sorted(first.values()).count("val") == 4
    assert first != generic.draw_splits(files, {}, generic.SplitDraw(seed=4))
    grown = generic.draw_splits([*files, "clip_new.wav"], {}, draw)  # one added file moves few others
    assert sum(grown[f] != first[f] for f in files) <= 3


def _write_wavs(root: Path, names: list[str]) -> None:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, 0.1 * rng.standard_normal(8000).astype("float32"), 16000)


def test_numbered_caption_columns_a_split_column_and_tsv(tmp_path):
    root = tmp_path / "clips"
    _write_wavs(root, ["a.wav", "b.wav", "c.wav"])
    (root / "meta.tsv").write_text("file\tsplit\tcaption_1\tcaption_2\n"
                                   "a.wav\ttrain\tone\ttwo\nb.wav\tValidation\tthree\t\nc.wav\ttest\tfour\tfive\n")
    metrics, out = _prepare("mine", {"recipe": "captions", "root": str(root), "metadata": "meta.tsv"}, tmp_path)
    manifest = _manifest(out)
    assert metrics["clips"] == 3 and manifest["split"] == ["train", "val", "test"]
    assert manifest["captions"] == [["one", "two"], ["three"], ["four", "five"]]
    assert not (out / "assigned_splits.csv").exists()


def test_multi_label_with_folds_is_scored_by_map_over_the_folds(tmp_path):
    root = tmp_path / "clips"
    _write_wavs(root, ["1.wav", "2.wav", "3.wav", "4.wav"])
    (root / "labels.csv").write_text("file,labels,fold\n1.wav,dog;bark,1\n2.wav,dog,2\n3.wav,bark,1\n"
                                     "4.wav,cat; dog,2\n")
    _, out = _prepare("pets", {"recipe": "labels", "root": str(root), "metadata": "labels.csv"}, tmp_path)
    info = yaml.safe_load((out / "dataset.json").read_text())
    assert info["classification"]["multi_label"] and info["classification"]["test_split"] is None
    assert info["split"] == "fold column" and info["classes"] == ["bark", "cat", "dog"]
    from blat_core.data.labelled import labelled_clips
    from blat_core.data.prepared import PreparedDataset

    data = labelled_clips(PreparedDataset(out))
    assert data.multi_label and len(data.evaluation_sets()) == 2 and data.targets.sum() == 6


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("filename,caption\na.wav,x\n", "needs the columns 'file' and 'caption'.*rename 'filename' to 'file'"),
        ("file;caption\na.wav;x\n", "the header is one column: is the file separated by ,"),
        ("file,caption,split\na.wav,x,train\nb.wav,y,dev\n", r"unknown split value\(s\) 'dev' \(line 3\)"),
        ("file,caption,caption_1\na.wav,x,y\n", "either one 'caption' column"),
        ("file,caption_1,caption_3\na.wav,x,y\n", "without gaps"),
    ],
)
def test_each_metadata_mistake_is_one_clear_error(tmp_path, table, expected):
    root = tmp_path / "clips"
    _write_wavs(root, ["a.wav", "b.wav"])
    (root / "captions.csv").write_text(table)
    with pytest.raises(MetadataError, match=expected):
        _prepare("mine", {"recipe": "captions", "root": str(root), "metadata": "captions.csv"}, tmp_path)


def test_a_path_outside_the_root_is_a_counted_skip_and_a_label_with_no_clips_an_error(tmp_path):
    root = tmp_path / "clips"
    _write_wavs(root, ["a.wav", "b.wav", "c.wav", "d.wav", "e.wav"])
    _write_wavs(tmp_path, ["secret.wav"])
    rows = "file,label\na.wav,dog\nb.wav,dog\nc.wav,cat\nd.wav,cat\ne.wav,cat\n"
    entry = {"recipe": "labels", "root": str(root), "metadata": "labels.csv", "test_fraction": 0.4}
    (root / "labels.csv").write_text(rows + "../secret.wav,cat\n")
    metrics, _ = _prepare("pets", entry, tmp_path / "one")
    assert metrics["skipped"] == {"outside_audio_root": 1} and metrics["clips"] == 5
    (root / "labels.csv").write_text(rows + "missing.wav,bird\n")
    lost = r"label\(s\) 'bird' have no usable clip.*labels.csv:7 missing.wav: missing_audio"
    with pytest.raises(PrepareError, match=lost):
        _prepare("pets", entry, tmp_path / "two")


@pytest.mark.parametrize(
    ("name", "entry", "expected"),
    [
        ("mine", {"root": "x"}, "unknown dataset 'mine'.*set `prepare.datasets.mine.recipe`"),
        ("mine", {"root": "x", "recipe": "tags", "metadata": "m.csv"}, "'tags' is not a recipe; valid: captions"),
        ("mine", {"root": "x", "recipe": "labels"}, "prepare.datasets.mine.metadata: name the metadata table"),
        ("mine", {"root": "x", "recipe": "labels", "metadata": "../m.csv"}, "must be a file inside"),
        ("esc50", {"root": "x", "recipe": "labels", "metadata": "m.csv"}, "known dataset with its own recipe"),
        ("esc50", {"root": "x", "audio_pattern": "{filename}", "metadata": "m.csv"}, "only apply to your own data"),
        ("mine", {"root": "x", "recipe": "labels", "metadata": "m.csv", "audio_pattern": "{name}"}, "placeholders"),
    ],
)
def test_params_mistakes_name_the_key(name, entry, expected):
    with pytest.raises(ParamsError, match=expected):
        _params({name: entry}).source(name)


def test_the_tasks_take_prepared_sets_of_your_own_by_kind(recordings_available, tmp_path):
    from blat_core.eval.tasks import check_task
    from blat_core.eval.tasks.classification import ZeroShotTask
    from blat_core.eval.tasks.retrieval import RetrievalTask

    root = tmp_path / "mine"
    real_audio.build_user_labels(root)
    prepared = tmp_path / "prepared"
    _prepare("my_labels", {"recipe": "labels", "root": str(root), "metadata": "labels.tsv"}, tmp_path)
    models = tmp_path / "models"
    (models / "m").mkdir(parents=True)
    (models / "m" / "blat.json").write_text("{}")
    check_task("zeroshot", ZeroShotTask(models=["m"], datasets=["my_labels"]), models, prepared)
    with pytest.raises(ParamsError, match="'my_labels' is not a dataset this task scores.*valid: audiocaps, clotho"):
        check_task("retrieval", RetrievalTask(models=["m"], datasets={"my_labels": "test"}), models, prepared)
    with pytest.raises(ParamsError, match="'my_typo' is not prepared"):
        check_task("zeroshot", ZeroShotTask(models=["m"], datasets=["my_typo"]), models, prepared)


def test_the_report_lists_your_datasets():
    from blat_core.eval.report import your_datasets

    recall = {"R@1": 0.25, "R@10": 0.75}
    metrics = {
        "evaluate_retrieval": {"retrieval": {"audiocaps": {"blat_stage2": {}},
                                             "my_sounds": {"blat_stage2": {"audio_to_text": recall,
                                                                           "text_to_audio": recall}}}},
        "evaluate_zeroshot": {"zeroshot": {"my_labels": {"blat_stage2": {"accuracy": 0.5, "mAP": 0.625}}}},
    }  # fmt: skip
    text = "\n".join(your_datasets(metrics, None))
    assert "| retrieval | my_sounds | blat_stage2 | 25.0 | 75.0 | 25.0 | 75.0 |" in text
    assert "| zeroshot | my_labels | blat_stage2 | 50.0 | 62.5 |" in text and "audiocaps" not in text
    assert your_datasets({"evaluate_retrieval": {"retrieval": {"clotho": {}}}}, None) == []


def test_a_kept_classifier_trains_scores_and_writes_a_model_folder(tmp_path):
    """finetuned@<name> on a tiny model: the folder loads as a BLAT model and as a classifier whose head fits; the
    tagger, an unlabelled set and a label with no training clip are refused naming the key."""
    from blat_core.models.blat_model import load_blat
    from blat_core.models.classifier import load_classifier
    from blat_core.train.finetuned import FinetunedParams, keep_finetuned
    from tests.helpers.tiny_models import make_models

    models = make_models(tmp_path / "models")
    rate = load_blat(models / "blat")[0].audio_encoder.sample_rate
    root = tmp_path / "clips"
    _write_wavs(root, [f"{i}.wav" for i in range(8)])
    table = "".join(f"{i}.wav,{'dog' if i % 2 else 'rain'},{'test' if i >= 6 else 'train'}\n" for i in range(8))
    (root / "labels.csv").write_text("file,label,split\n" + table)
    entry = {"recipe": "labels", "root": str(root), "metadata": "labels.csv"}
    section = {**project_params()["prepare"], "sample_rate": rate, "datasets": {"pets": entry}}
    (tmp_path / "prepared" / "pets").mkdir(parents=True)
    prepare_dataset("pets", from_dict(PrepareParams, section, "prepare"), {}, tmp_path / "prepared" / "pets")
    params = FinetunedParams(model="blat", dataset="pets", steps=2, batch_size=4, max_seconds=0.5)
    out = tmp_path / "finetuned" / "pets_classifier"
    metrics = keep_finetuned("pets_classifier", params, models, tmp_path / "prepared", out, tmp_path / "scratch", [])
    kept = metrics["pets_classifier"]
    assert kept["train_clips"] == 6 and kept["test_clips"] == 2 and 0 <= kept["test"]["accuracy"] <= 1
    classifier = load_classifier(out)
    assert classifier.classes == ["dog", "rain"] and not classifier.multi_label
    tuned, _, meta = load_blat(out)
    assert meta["finetuned"]["dataset"] == "pets"
    before = load_blat(models / "blat")[0].audio_encoder.state_dict()
    assert any((before[k] != v).any() for k, v in tuned.audio_encoder.state_dict().items())  # the tower trained
    # Its model card (blat export) carries the head's held-out scores as a model-index entry of these weights.
    from blat_core.app.model_card import build_card

    card = build_card(out, "pets_classifier", tmp_path, tmp_path / "metrics", onnx=False)
    matter = yaml.safe_load(card.split("---\n")[1])
    [entry] = matter["model-index"][0]["results"]
    assert entry["task"]["type"] == "audio-classification" and entry["dataset"]["type"] == "pets"
    assert entry["dataset"]["args"]["clips_scored"] == 2 and entry["dataset"]["args"]["train_clips"] == 6
    assert {m["type"]: m["value"] for m in entry["metrics"]}["accuracy"] == round(kept["test"]["accuracy"], 4)
    assert matter["pipeline_tag"] == "audio-classification" and "## Fine-tuned classifier" in card
    assert "2 classes, single-label (softmax): `dog`, `rain`" in card
    with pytest.raises(ParamsError, match="finetuned.x.model: 'tagger' is not a BLAT model folder"):
        keep_finetuned("x", FinetunedParams(model="tagger", dataset="pets"), models, tmp_path / "prepared", out,
                       tmp_path / "scratch", [])  # fmt: skip
    (root / "labels.csv").write_text("file,label,split\n" + table + "7b.wav,bird,test\n")
    _write_wavs(root, ["7b.wav"])
    prepare_dataset("pets", from_dict(PrepareParams, section, "prepare"), {}, tmp_path / "prepared" / "pets")
    with pytest.raises(ParamsError, match=r"label\(s\) \['bird'\] have no training clip in pets"):
        keep_finetuned("x", params, models, tmp_path / "prepared", out, tmp_path / "scratch", [])
