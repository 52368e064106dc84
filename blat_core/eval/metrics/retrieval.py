"""Retrieval metrics (SPEC §2): N clips, each with its captions (5 in AudioCaps/Clotho test).

Text->audio: every caption ranks the N clips. Audio->text: every clip ranks all captions and counts
its best-ranked true caption. Ranks are 1-based; ties are broken against the true item (pessimistic):
an item scored exactly as high as the true one ranks ahead of it, so a constant similarity matrix gets the
worst ranks, never the best. A NaN or infinite similarity is an error naming its row (the clip), not a rank.
"""

from __future__ import annotations

import numpy as np
import torch

DIRECTIONS = ("audio_to_text", "text_to_audio")


def ranks_text_to_audio(similarity: np.ndarray, caption_audio: np.ndarray) -> np.ndarray:
    """(N clips, M captions) similarity, caption -> its clip index: each caption's rank of its clip."""
    true = similarity[caption_audio, np.arange(similarity.shape[1])]  # (M,)
    return (similarity >= true[None, :]).sum(axis=0)  # counts the true clip itself: rank 1 when it is alone on top


def ranks_audio_to_text(similarity: np.ndarray, caption_audio: np.ndarray) -> np.ndarray:
    """Each clip's rank of its best-ranked true caption among all M captions."""
    ranks = np.empty(similarity.shape[0], dtype=np.int64)
    for clip in range(similarity.shape[0]):
        scores = similarity[clip]
        best_true = scores[caption_audio == clip].max()
        ranks[clip] = 1 + int((scores[caption_audio != clip] >= best_true).sum())
    return ranks


def recall_metrics(ranks: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    metrics = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    metrics["median_rank"] = float(np.median(ranks))
    return metrics


def retrieval_metrics(similarity: np.ndarray | torch.Tensor, caption_audio: list[int] | np.ndarray) -> dict:
    """{"audio_to_text": {R@1, R@5, R@10, median_rank}, "text_to_audio": {...}, "geometric_mean": g}.

    `geometric_mean` is over the six recalls (both directions, R@1/5/10): the model-selection score.
    """
    if isinstance(similarity, torch.Tensor):
        similarity = similarity.float().cpu().numpy()
    caption_audio = np.asarray(caption_audio)
    require_finite(similarity, "clip")
    if similarity.shape[1] != len(caption_audio):
        raise ValueError(f"{similarity.shape[1]} caption columns but {len(caption_audio)} caption->clip entries")
    a2t = recall_metrics(ranks_audio_to_text(similarity, caption_audio))
    t2a = recall_metrics(ranks_text_to_audio(similarity, caption_audio))
    recalls = [d[f"R@{k}"] for d in (a2t, t2a) for k in (1, 5, 10)]
    geometric = float(np.exp(np.mean(np.log(np.maximum(recalls, 1e-12))))) if min(recalls) > 0 else 0.0
    return {"audio_to_text": a2t, "text_to_audio": t2a, "geometric_mean": geometric}


def require_finite(scores: np.ndarray, row_name: str, row_ids: list[str] | None = None) -> None:
    """Scores feed ranks and averages, where a NaN or an infinity would silently become a number: refuse
    them, naming the first bad row (its id when given)."""
    bad = ~np.isfinite(scores)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=tuple(range(1, scores.ndim))))[0])
        name = row_ids[row] if row_ids is not None else str(row)
        raise ValueError(f"non-finite score in {row_name} {name} ({int(bad.sum())} of {bad.size} scores): "
                         "the model produced NaN/inf (diverged weights or a broken input)")  # fmt: skip
