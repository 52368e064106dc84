"""Retrieval metrics on planted similarity matrices."""

from __future__ import annotations

import numpy as np
import pytest

from blat_core.eval.metrics.retrieval import ranks_audio_to_text, ranks_text_to_audio, retrieval_metrics

FIVE = np.repeat(np.arange(4), 5)  # 4 clips x 5 captions, caption j belongs to clip j // 5


def test_identity_gives_perfect_recall():
    """Each caption most similar to its own clip: every recall is 1, median rank 1."""
    similarity = (FIVE[None, :] == np.arange(4)[:, None]).astype(float)
    metrics = retrieval_metrics(similarity, FIVE)
    for direction in ("audio_to_text", "text_to_audio"):
        assert metrics[direction] == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "median_rank": 1.0}
    assert metrics["geometric_mean"] == pytest.approx(1.0)


def test_known_permutation_gives_known_ranks():
    """Clip c's captions score highest on clip (c+1) mod 4, then on c: every true rank is 2."""
    similarity = np.zeros((4, 20))
    for caption, clip in enumerate(FIVE):
        similarity[clip, caption] = 0.5
        similarity[(clip + 1) % 4, caption] = 1.0
    assert (ranks_text_to_audio(similarity, FIVE) == 2).all()
    # Audio->text: clip c's own captions (0.5) rank behind the 5 captions of clip c-1 (1.0): rank 6.
    assert (ranks_audio_to_text(similarity, FIVE) == 6).all()
    metrics = retrieval_metrics(similarity, FIVE)
    assert metrics["text_to_audio"]["R@1"] == 0.0 and metrics["text_to_audio"]["R@5"] == 1.0
    assert metrics["audio_to_text"]["R@5"] == 0.0 and metrics["audio_to_text"]["R@10"] == 1.0
    assert metrics["geometric_mean"] == 0.0


def test_audio_to_text_counts_the_best_of_five():
    """One good caption among five is enough for audio->text R@1; text->audio counts each caption."""
    rng = np.random.default_rng(0)
    similarity = rng.uniform(0.0, 0.1, (4, 20))
    similarity[np.arange(4), np.arange(4) * 5] = 1.0  # only the first caption of each clip matches well
    assert (ranks_audio_to_text(similarity, FIVE) == 1).all()
    t2a = ranks_text_to_audio(similarity, FIVE)
    assert (t2a[::5] == 1).all() and t2a.mean() > 1


def test_ties_count_against_the_true_item():
    """A constant similarity matrix ranks every true item last among its ties."""
    metrics = retrieval_metrics(np.zeros((4, 20)), FIVE)
    assert metrics["text_to_audio"]["median_rank"] == 4.0
    assert metrics["audio_to_text"]["median_rank"] == 16.0


def test_a_non_finite_similarity_is_an_error_naming_the_clip():
    """NaN would otherwise rank as a number: the metric refuses it and names the row."""
    similarity = np.eye(3, 6)
    similarity[1, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite score in clip 1"):
        retrieval_metrics(similarity, [0, 0, 1, 1, 2, 2])
