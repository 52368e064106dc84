"""Evaluation: metrics against scikit-learn, zero-shot on planted embeddings, the linear probe, the
per-task params (the report: tests/test_report.py)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.metrics import accuracy_score, average_precision_score

from blat_core.data.datasets import recipe
from blat_core.data.labelled import LabelledClips
from blat_core.eval import classification
from blat_core.eval.metrics import classification as metrics
from blat_core.params import ParamsError
from stages.evaluate import load_task


def _clips(name: str, classes: int, per_class: int, folds: int) -> LabelledClips:
    count = classes * per_class
    labels = np.repeat(np.arange(classes), per_class)
    targets = np.eye(classes, dtype=np.float32)[labels]
    return LabelledClips(name, [f"c{i}" for i in range(count)], np.arange(count) % folds + 1,
                         np.array(["all"] * count), [f"class_{i}" for i in range(classes)], targets,
                         recipe(name).classification)  # fmt: skip


def test_accuracy_and_map_match_scikit_learn():
    rng = np.random.default_rng(0)
    targets = (rng.random((50, 6)) > 0.7).astype(np.float32)
    targets[0] = 0
    scores = rng.random((50, 6))
    expected = np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in range(6) if targets[:, c].any()])
    assert metrics.mean_average_precision(targets, scores)[0] == pytest.approx(expected)
    single = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 50)]
    assert metrics.accuracy(single, scores) == pytest.approx(accuracy_score(single.argmax(1), scores.argmax(1)))


def test_zero_shot_on_planted_embeddings():
    """Each clip's embedding is its class's text embedding plus small noise: accuracy 1 on every fold."""
    data = _clips("esc50", classes=5, per_class=8, folds=4)
    rng = np.random.default_rng(1)
    text = rng.standard_normal((5, 16)).astype(np.float32)
    audio = text[data.targets.argmax(1)] + 0.05 * rng.standard_normal((40, 16)).astype(np.float32)
    result = classification.zero_shot(data, audio, text)
    assert result["accuracy"] == 1.0 and result["sets"] == 4
    shuffled = classification.zero_shot(data, audio, text[::-1].copy())
    assert shuffled["accuracy"] < 0.5
    # Per-class details cover every clip of the folds: 8 per class; their weighted mean is the accuracy.
    table = shuffled["details"]["per_class"]
    perfect = {"accuracy": 1.0, "clips": 8, "confused_with": "", "confused": 0}
    assert result["details"]["per_class"]["class_0"] == perfect
    assert sum(row["clips"] for row in table.values()) == 40
    assert sum(row["accuracy"] * row["clips"] for row in table.values()) / 40 == pytest.approx(shuffled["accuracy"])
    assert classification.label_text("church_bells", "the sound of {}") == "the sound of church bells"


def test_linear_probe_learns_separable_classes_and_depends_on_the_seed_only_through_init():
    data = _clips("us8k", classes=3, per_class=20, folds=5)
    rng = np.random.default_rng(2)
    embeddings = (data.targets @ rng.standard_normal((3, 8)) * 3 + rng.standard_normal((60, 8))).astype(np.float32)
    first = classification.linear_probe(data, embeddings, seed=0, epochs=100, lr=1.0e-2, weight_decay=0.0)
    again = classification.linear_probe(data, embeddings, seed=0, epochs=100, lr=1.0e-2, weight_decay=0.0)
    assert first == again and first["accuracy"] > 0.9 and first["sets"] == 5


def test_task_params_are_strict(tmp_path):
    params = {"evaluate": {"tasks": {"zeroshot": {"models": ["m"], "datasets": ["esc50"], "promt": "{}"}}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="evaluate.tasks.zeroshot.promt"):
        load_task(path, "zeroshot")
    params["evaluate"]["tasks"] = {"zero_shot": {}}
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="unknown evaluate.tasks"):
        load_task(path, "zeroshot")


def test_only_the_clips_an_evaluation_uses_are_kept():
    """Zero-shot keeps the test clips; the probe also the training clips; AudioSet's other splits go."""
    data = _clips("audioset", classes=2, per_class=6, folds=1)
    data.splits = np.array(["balanced_train", "unbalanced_train", "eval"] * 4)
    assert set(data.used(train=False).splits) == {"eval"} and len(data.used(train=False).audio_ids) == 4
    assert set(data.used(train=True).splits) == {"balanced_train", "eval"}


def test_a_non_finite_class_score_names_the_clip():
    """Classification metrics refuse NaN/inf scores, naming the clip id of the bad row."""
    data = LabelledClips("esc50", ["a", "b", "c"], np.array([1, 1, 2]), np.array(["all"] * 3),
                                        ["dog", "cat"], np.eye(2, dtype=np.float32)[[0, 1, 0]],
                                        recipe("esc50").classification)  # fmt: skip
    scores = np.array([[1.0, 0.0], [np.inf, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="non-finite score in clip b"):
        data.score(np.ones(3, dtype=bool), scores)
