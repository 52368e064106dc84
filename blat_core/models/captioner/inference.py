"""The captioner's inference API: captions for clips given their frame features and tags."""

from __future__ import annotations

import numpy as np
import torch

from blat_core import compute
from blat_core.data.prepared import multi_hot
from blat_core.models.captioner.beam_search import beam_search
from blat_core.models.captioner.io import LoadedCaptioner


@torch.no_grad()
def caption_frames(
    captioner: LoadedCaptioner, arrays: list[np.ndarray], tag_mids: list[list[str]], beam: int, max_tokens: int, device
) -> tuple[list[str], list[float]]:
    """Beam-search one caption per clip from its (frames, dim) features and AudioSet tag mids, as one batch;
    (captions, length-normalised log-probabilities)."""
    lengths = torch.tensor([len(a) for a in arrays])
    frames = torch.zeros(len(arrays), int(lengths.max()), arrays[0].shape[1])  # (B, T, D), zero-padded
    for row, array in enumerate(arrays):
        frames[row, : len(array)] = torch.from_numpy(array.astype(np.float32))
    tag_hot = torch.from_numpy(multi_hot(tag_mids, captioner.classes))
    with compute.autocast(device):
        tokens, scores = beam_search(captioner.model, frames.to(device), lengths, tag_hot.to(device),
                                     captioner.vocab.start, captioner.vocab.end, beam, max_tokens)  # fmt: skip
    return [captioner.vocab.decode(t) for t in tokens], scores.float().cpu().tolist()
