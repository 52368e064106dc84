"""Evaluation: metrics against scikit-learn, zero-shot on planted embeddings, the linear probe, the
per-task params, and the report rendered from a metrics fixture."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.metrics import accuracy_score, average_precision_score

from blat_core.eval import classification
from blat_core.eval.classification import LabelledClips
from blat_core.eval.report import NOT_RUN, claims, render
from blat_core.params import ParamsError
from stages.evaluate import load_task


def _clips(name: str, classes: int, per_class: int, folds: int) -> LabelledClips:
    count = classes * per_class
    labels = np.repeat(np.arange(classes), per_class)
    targets = np.eye(classes, dtype=np.float32)[labels]
    return LabelledClips(name, [f"c{i}" for i in range(count)], np.arange(count) % folds + 1,
                         np.array(["all"] * count), [f"class_{i}" for i in range(classes)], targets)  # fmt: skip


def test_accuracy_and_map_match_scikit_learn():
    rng = np.random.default_rng(0)
    targets = (rng.random((50, 6)) > 0.7).astype(np.float32)
    targets[0] = 0
    scores = rng.random((50, 6))
    expected = np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in range(6) if targets[:, c].any()])
    assert classification.mean_average_precision(targets, scores)[0] == pytest.approx(expected)
    single = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 50)]
    assert classification.accuracy(single, scores) == pytest.approx(accuracy_score(single.argmax(1), scores.argmax(1)))


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


def _retrieval(r1: float) -> dict:
    direction = {"R@1": r1, "R@5": 0.5, "R@10": 0.8, "median_rank": 3.0}
    return {"audio_to_text": direction, "text_to_audio": direction, "geometric_mean": 0.5}


FIXTURE = {
    "captioning_synthetic": {"captioning_synthetic": {
        name: {"bleu_4": 0.3, "rouge_l": 0.5, "meteor": 0.2, "cider": cider, "spice": None, "fense": None,
               "unavailable": {"spice": "no CoreNLP"}}
        for name, cider in (("without_tag", 0.7), ("with_tag", 0.9), ("human", 2.0))}},
    "evaluate_retrieval": {"retrieval": {d: {"blat_stage2": _retrieval(0.3), "blat_realonly": _retrieval(0.2)}
                                         for d in ("audiocaps", "clotho")}},
    "evaluate_zeroshot": {"zeroshot": {
        "esc50": {"blat_stage2": {"accuracy": 0.5, "mAP": 0.6, "chance_accuracy": 0.05},
                  "blat_realonly": {"accuracy": 0.4, "mAP": 0.5, "chance_accuracy": 0.05}}}},
}  # fmt: skip


def test_report_renders_every_table_and_checks_the_claims():
    text = render(FIXTURE, "a fixture")
    for heading in ("## Miniature claims", "## Table 2", "## Table 3", "## Table 4", "## Table 5"):
        assert heading in text
    assert "| BLAT zero-shot (ours) | 30.0 | 80.0 | 30.0 | 80.0 |" in text
    assert "| synthetic, with tags (paper) | 26.4 | 49.0 | 24.5 | 80.4 | 21.0 | 62.5 |" in text
    assert "SPICE unavailable: no CoreNLP" in text and NOT_RUN in text
    status = {c["claim"].split(" (")[0]: c["status"] for c in claims(FIXTURE)}
    assert status["Tag guidance improves the synthetic captions"] == "holds"
    assert status["BLAT beats chance by a wide margin"] == "holds"
    assert status["Synthetic pre-training improves zero-shot retrieval over real-only training"] == "holds"
    assert status["BLAT pre-training helps fine-tuned classification"] == "not evaluated"
    assert status["Pre-training helps fine-tuned retrieval"] == "not evaluated"
    tuned = {d: {"blat_stage2": _tuned(0.4), "scratch": _tuned(0.3)} for d in ("audiocaps", "clotho")}
    with_tuned = {**FIXTURE, "evaluate_retrieval_finetune": {"retrieval_finetune": tuned}}
    assert "| BLAT fine-tuned (ours) | 40.0 ± 1.0 |" in render(with_tuned, "a fixture")
    status = {c["claim"].split(" (")[0]: c["status"] for c in claims(with_tuned)}
    assert status["Pre-training helps fine-tuned retrieval"] == "holds"


def _tuned(r1: float) -> dict:
    cell = {"R@1": {"mean": r1, "std": 0.01}, "R@10": {"mean": 0.9, "std": 0.0}}
    return {"audio_to_text": cell, "text_to_audio": cell}


def test_a_claim_that_fails_is_reported_as_failing():
    rows = FIXTURE["captioning_synthetic"]["captioning_synthetic"]
    worse_rows = {**rows, "with_tag": {**rows["with_tag"], "cider": 0.5}}
    worse = {**FIXTURE, "captioning_synthetic": {"captioning_synthetic": worse_rows}}
    assert claims(worse)[0]["status"] == "does not hold"


def _captioning(cider: float) -> dict:
    return {"bleu_4": 0.1, "rouge_l": 0.3, "meteor": 0.12, "cider": cider, "spice": None, "spider": None,
            "fense": None, "unavailable": {"spice": "no CoreNLP jars", "fense": "no FENSE files"}}  # fmt: skip


def test_table4_and_its_claim():
    assert "| BLAT (ours) | AudioCaps | " + " | ".join([NOT_RUN] * 6) + " |" in render(FIXTURE, "a fixture")
    status = {c["claim"].split(" (")[0]: c["status"] for c in claims(FIXTURE)}
    assert status["BLAT's frozen frame features caption better than the tagger's"] == "not evaluated"
    runs = {"audiocaps": {"blat_stage2": _captioning(0.4), "tagger": _captioning(0.3)},
            "clotho": {"blat_stage2": _captioning(0.2), "tagger": _captioning(0.1)}}  # fmt: skip
    with_runs = {**FIXTURE, "evaluate_captioning": {"captioning": runs}}
    text = render(with_runs, "a fixture")
    assert "| BLAT (ours) | AudioCaps | 10.0 | 30.0 | 12.0 | 40.0 | – | – |" in text
    assert "| PANNs / tagger (ours) | Clotho | 10.0 | 30.0 | 12.0 | 10.0 | – | – |" in text
    assert "| BLAT (paper) | Clotho | – | – | – | – | 27.1 | 45.8 |" in text
    assert "- SPICE unavailable: no CoreNLP jars" in text
    status = {c["claim"].split(" (")[0]: c["status"] for c in claims(with_runs)}
    assert status["BLAT's frozen frame features caption better than the tagger's"] == "holds"
    runs["clotho"]["tagger"] = _captioning(0.25)
    status = {c["claim"].split(" (")[0]: c["status"] for c in claims(with_runs)}
    assert status["BLAT's frozen frame features caption better than the tagger's"] == "does not hold"


def test_only_the_clips_an_evaluation_uses_are_kept():
    """Zero-shot keeps the test clips; the probe also the training clips; AudioSet's other splits go."""
    data = _clips("audioset", classes=2, per_class=6, folds=1)
    data.splits = np.array(["balanced_train", "unbalanced_train", "eval"] * 4)
    assert set(data.used(train=False).splits) == {"eval"} and len(data.used(train=False).audio_ids) == 4
    assert set(data.used(train=True).splits) == {"balanced_train", "eval"}
