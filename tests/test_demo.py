"""The demo corpus: deterministic, in the real formats, with captions and labels as SPEC §5 asks,
and learnable (a simple classifier on log-mel statistics separates its event classes)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from blat_core.data.demo import labels
from blat_core.data.demo.corpus import build_corpus, plan_corpus
from blat_core.data.demo.mixing import mix
from blat_core.data.demo.sounds import EVENTS, EVENTS_BY_KEY, UNCAPTIONED


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generator_is_byte_for_byte_deterministic(tmp_path, tiny_demo_params, tiny_corpus):
    """Building the corpus again (with another worker count) gives identical bytes in every file."""
    again = tmp_path / "again"
    build_corpus(tiny_demo_params, again, workers=1)
    assert _tree_digest(again) == _tree_digest(tiny_corpus)


def test_at_least_twenty_event_classes_with_real_audioset_names():
    assert len(EVENTS) >= 20
    assert len({e.mid for e in EVENTS}) == len(EVENTS)
    assert all(re.fullmatch(r"/[mgt]/[0-9a-z_]+", e.mid) for e in EVENTS)


def test_events_vary_between_draws():
    """Two renders of the same class differ (pitch, rate, duration or timbre are random)."""
    for event in EVENTS:
        a = mix(dataclasses.replace(_plan(event.key), seed=1))[0]
        b = mix(dataclasses.replace(_plan(event.key), seed=2))[0]
        assert a.shape != b.shape or not np.allclose(a, b), event.key


def _plan(key: str):
    from blat_core.data.demo.mixing import ClipPlan

    return ClipPlan("x.wav", 0, 16000, 2.0, (key,), (10.0, 20.0), (-50.0, -40.0))


def test_audioset_format(tiny_corpus):
    meta = tiny_corpus / "audioset" / "metadata"
    classes = (meta / "class_labels_indices.csv").read_text().splitlines()
    assert classes[0] == "index,mid,display_name"
    assert '1,/m/07qrkrw,"Meow"' in classes
    assert any('"Vehicle horn, car horn, honking"' in line for line in classes)
    for split in ("balanced_train", "unbalanced_train", "eval"):
        lines = (meta / f"{split}_segments.csv").read_text().splitlines()
        assert [line.startswith("#") for line in lines[:4]] == [True, True, True, False]
        assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
        assert re.fullmatch(r'[\w-]{11}, \d+\.000, \d+\.000, "/[mgt]/[\w]+(,/[mgt]/[\w]+)*"', lines[3])


def test_audiocaps_clips_are_audioset_clips_and_never_uncaptioned(tiny_corpus):
    """AudioCaps ids join AudioSet; no AudioCaps clip carries a class outside the captioned set."""
    meta = tiny_corpus / "audioset" / "metadata"
    segments = {}
    for split in ("balanced_train", "unbalanced_train"):
        for row in csv.reader((meta / f"{split}_segments.csv").read_text().splitlines()[3:], skipinitialspace=True):
            segments[row[0]] = (split, row[3].split(","))
    uncaptioned = {EVENTS_BY_KEY[k].mid for k in UNCAPTIONED}
    for split, source in (("train", "unbalanced_train"), ("val", "balanced_train"), ("test", "balanced_train")):
        rows = list(csv.DictReader((tiny_corpus / "audiocaps" / "metadata" / f"{split}.csv").open()))
        per_clip = {}
        for row in rows:
            per_clip.setdefault(row["youtube_id"], []).append(row["caption"])
            assert segments[row["youtube_id"]][0] == source
            assert not uncaptioned & set(segments[row["youtube_id"]][1])
        assert {len(c) for c in per_clip.values()} == ({1} if split == "train" else {5})
    all_audioset_mids = {m for _, mids in segments.values() for m in mids}
    assert uncaptioned & all_audioset_mids, "AudioSet must hold classes the captioned sets never contain"


def test_clotho_captions_longer_and_worded_differently(tiny_corpus):
    clotho = list(csv.reader((tiny_corpus / "clotho" / "metadata" / "clotho_captions_development.csv").open()))
    assert clotho[0] == ["file_name"] + [f"caption_{k}" for k in range(1, 6)]
    clotho_caps = [c for row in clotho[1:] for c in row[1:]]
    caps = [r["caption"] for r in csv.DictReader((tiny_corpus / "audiocaps" / "metadata" / "test.csv").open())]
    assert np.mean([len(c.split()) for c in clotho_caps]) > 1.3 * np.mean([len(c.split()) for c in caps])
    clotho_words = {w for c in clotho_caps for w in c.lower().strip(".").split()}
    caps_words = {w for c in caps for w in c.lower().split()}
    assert len(clotho_words - caps_words) > 20


def test_caption_shapes_present(tiny_corpus):
    """Several sentence shapes appear: 'while', 'followed by'/'then', 'in the background'."""
    text = (tiny_corpus / "audiocaps" / "metadata" / "train.csv").read_text()
    for shape in (" while ", " in the background", " and "):
        assert shape in text


def test_classification_formats(tiny_corpus):
    esc = list(csv.DictReader((tiny_corpus / "esc50" / "meta" / "esc50.csv").open()))
    assert list(esc[0]) == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    for row in esc:
        assert re.fullmatch(rf"{row['fold']}-\d+-[A-H]-{row['target']}\.wav", row["filename"])
    assert "dog" in {r["category"] for r in esc} and "crickets" in {r["category"] for r in esc}
    us8k = list(csv.DictReader((tiny_corpus / "us8k" / "metadata" / "UrbanSound8K.csv").open()))
    assert list(us8k[0]) == ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
    assert all((tiny_corpus / "us8k" / "audio" / f"fold{r['fold']}" / r["slice_file_name"]).is_file() for r in us8k)
    assert {r["class"] for r in us8k} == {name for name, _ in labels.US8K.values()}
    vgg = list(csv.reader((tiny_corpus / "vggsound" / "metadata" / "vggsound.csv").open()))
    assert all(len(r) == 4 and r[3] in ("train", "test") for r in vgg)  # no header row
    fsd = tiny_corpus / "fsd50k" / "FSD50K.ground_truth"
    assert list(csv.reader(fsd.joinpath("vocabulary.csv").open()))[0][0] == "0"  # no header row
    assert fsd.joinpath("dev.csv").read_text().startswith("fname,labels,mids,split\n")
    assert fsd.joinpath("eval.csv").read_text().startswith("fname,labels,mids\n")
    macs = yaml.safe_load((tiny_corpus / "macs" / "metadata" / "MACS.yaml").read_text())
    entry = macs["files"][0]
    assert set(entry) == {"filename", "annotations"}
    assert set(entry["annotations"][0]) == {"annotator_id", "sentence", "tags"}


def test_us8k_has_stereo_and_several_rates(tiny_corpus):
    infos = [sf.info(p) for p in (tiny_corpus / "us8k" / "audio").rglob("*.wav")]
    assert {i.channels for i in infos} == {1, 2}
    assert len({i.samplerate for i in infos}) >= 2


def _logmel_stats(wave: np.ndarray, rate: int) -> np.ndarray:
    mel = torchaudio.transforms.MelSpectrogram(rate, n_fft=512, hop_length=256, n_mels=40)(torch.from_numpy(wave))
    logmel = torch.log(mel + 1e-6)
    return torch.cat([logmel.mean(1), logmel.std(1)]).numpy()


@pytest.mark.slow
def test_corpus_is_learnable(tiny_demo_params):
    """Log-mel mean/std + logistic regression separates the 20 ESC-50 demo classes far above chance."""
    params = dataclasses.replace(
        tiny_demo_params,
        scale=1.0,
        sizes={**tiny_demo_params.sizes, "esc50_per_class_and_fold": 3},
        sample_rates={**tiny_demo_params.sample_rates, "esc50": 16000},
    )
    clips = [(plan, row) for plan, row in plan_corpus(params).rows["esc50"]]
    features = np.stack([_logmel_stats(mix(plan)[0].mean(1), plan.sample_rate) for plan, _ in clips])
    targets = np.array([row["target"] for _, row in clips])
    test = np.array([row["fold"] == 5 for _, row in clips])
    scaler = StandardScaler().fit(features[~test])
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(features[~test]), targets[~test])
    accuracy = model.score(scaler.transform(features[test]), targets[test])
    chance = 1 / len(labels.ESC50)
    print(f"learnability: accuracy {accuracy:.3f} on {test.sum()} held-out clips, chance {chance:.3f}")
    assert accuracy > 10 * chance
