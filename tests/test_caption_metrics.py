"""Caption metrics equal pycocoevalcap's own scorers on a fixed example; SPICE is reported unavailable
(with the reason) when the CoreNLP jars are not configured, never as zero."""

from __future__ import annotations

import pytest

from blat_core.eval.metrics.captions import LocalModels, caption_scores, ptb_tokenize

REFERENCES = {
    "a": [
        "A dog barks while a siren wails.",
        "A dog is barking and a siren is wailing",
        "Dogs bark as an emergency siren sounds",
        "A siren blares while a dog barks",
        "A dog barks, then a siren wails",
    ],
    "b": [
        "Rain falls on a roof",
        "It is raining heavily",
        "Rain pours down onto a surface",
        "Heavy rain is falling",
        "Rain patters on the ground",
    ],
    "c": [
        "A man speaks and people clap",
        "Someone talks while an audience applauds",
        "A person is talking and a crowd claps",
        "People clap after a man speaks",
        "A man speaking, then applause",
    ],
}
CANDIDATES = {"a": "a dog barks while a siren wails", "b": "rain is falling on a roof", "c": "a man is speaking"}


@pytest.fixture(scope="module")
def scores():
    return caption_scores(REFERENCES, CANDIDATES)


def test_scores_equal_pycocoevalcap_scorers(scores):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    gts = ptb_tokenize(REFERENCES)
    res = ptb_tokenize({k: [v] for k, v in CANDIDATES.items()})
    bleu = Bleu(4).compute_score(gts, res)[0]
    assert [scores[f"bleu_{n}"] for n in range(1, 5)] == pytest.approx(bleu)
    assert scores["meteor"] == pytest.approx(Meteor().compute_score(gts, res)[0])
    assert scores["rouge_l"] == pytest.approx(Rouge().compute_score(gts, res)[0])
    assert scores["cider"] == pytest.approx(Cider().compute_score(gts, res)[0])
    assert 0 < scores["bleu_4"] < scores["bleu_1"] <= 1 and scores["cider"] > 0.5


def test_perfect_candidate_scores_higher():
    better = caption_scores(REFERENCES, {k: v[0] for k, v in REFERENCES.items()})
    worse = caption_scores(REFERENCES, {"a": "music plays", "b": "a cat meows", "c": "an engine idles"})
    for metric in ("bleu_4", "meteor", "rouge_l", "cider"):
        assert better[metric] > worse[metric], metric


def test_spice_unavailable_with_reason(scores, tmp_path):
    assert scores["spice"] is None and scores["spider"] is None
    assert "stanford-corenlp-3.6.0.jar" in scores["unavailable"]["spice"]
    configured = caption_scores(REFERENCES, CANDIDATES, LocalModels(corenlp_dir=str(tmp_path)))
    assert configured["spice"] is None and str(tmp_path) in configured["unavailable"]["spice"]


def test_meteor_reuses_one_java_process_and_restarts_a_dead_one():
    """One METEOR process serves every call in a process (a start costs seconds); a call after it died starts another
    and scores the same; each score equals a fresh pycocoevalcap scorer's."""
    from pycocoevalcap.meteor.meteor import Meteor

    from blat_core.eval.metrics import captions as caption_metrics

    gts = ptb_tokenize(REFERENCES)
    res = ptb_tokenize({k: [v] for k, v in CANDIDATES.items()})
    first = caption_metrics.meteor_score(gts, res)
    process = caption_metrics._meteor.meteor_p
    others = {k: v[1:] for k, v in gts.items()}
    held_out = {k: v[:1] for k, v in gts.items()}
    assert caption_metrics.meteor_score(others, held_out) == pytest.approx(Meteor().compute_score(others, held_out)[0])
    assert caption_metrics._meteor.meteor_p is process
    assert caption_metrics.meteor_score(gts, res) == first  # an earlier call does not change a later score

    process.kill()
    process.wait()
    assert caption_metrics.meteor_score(gts, res) == first
    assert caption_metrics._meteor.meteor_p is not process


def test_a_meteor_call_that_fails_stops_its_process_and_the_next_call_starts_fresh():
    import gc

    from blat_core.eval.metrics import captions as caption_metrics

    gts = ptb_tokenize(REFERENCES)
    res = ptb_tokenize({k: [v] for k, v in CANDIDATES.items()})
    expected = caption_metrics.meteor_score(gts, res)
    broken = caption_metrics._meteor
    process = broken.meteor_p

    def fail(*_):
        raise RuntimeError("METEOR answered nonsense")

    broken._stat = fail  # compute_score fails while it holds its lock
    with pytest.raises(RuntimeError, match="nonsense"):
        caption_metrics.meteor_score(gts, res)
    assert caption_metrics._meteor is None and not broken.lock.locked()
    del broken, fail
    gc.collect()
    assert process.wait(timeout=10) is not None  # Meteor.__del__ could take the lock and stop Java
    assert caption_metrics.meteor_score(gts, res) == expected
