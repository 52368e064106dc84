"""The captioner's inference API: captions for clips given their frame features and tags. Every caption the
project writes (validation and test scores, synthetic captions, `blat caption`, `blat serve`) is decoded
here, by `caption_batch`."""

from __future__ import annotations

import numpy as np
import torch

from blat_core import compute
from blat_core.data.prepared import multi_hot
from blat_core.models.captioner.beam_search import beam_search
from blat_core.models.captioner.io import LoadedCaptioner
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary

# Predicted tags guide a captioner where no AudioSet labels exist (`blat caption`, `blat serve`): every tag
# the tagger gives at least this probability, and at least its top tag.
TAG_THRESHOLD = 0.3


def pad_frames(arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) float32 frames, zero-padded to the longest clip, and each clip's frame count."""
    lengths = torch.tensor([len(a) for a in arrays])
    frames = torch.zeros(len(arrays), int(lengths.max()), arrays[0].shape[1])
    for row, array in enumerate(arrays):
        frames[row, : len(array)] = torch.from_numpy(array.astype(np.float32))
    return frames, lengths


@torch.no_grad()
def caption_batch(
    model: Captioner, vocab: Vocabulary, frames: torch.Tensor, lengths: torch.Tensor, tag_hot: torch.Tensor,
    beam: int, max_tokens: int, device,
) -> tuple[list[str], list[float]]:  # fmt: skip
    """Beam-search one caption per clip of a padded batch; (captions, length-normalised log-probabilities)."""
    with compute.autocast(device):
        tokens, scores = beam_search(model, frames.to(device), lengths, tag_hot.to(device), vocab.start, vocab.end,
                                     beam, max_tokens)  # fmt: skip
    return [vocab.decode(t) for t in tokens], scores.float().cpu().tolist()


def caption_frames(
    captioner: LoadedCaptioner, arrays: list[np.ndarray], tag_mids: list[list[str]], beam: int, max_tokens: int, device
) -> tuple[list[str], list[float]]:
    """Beam-search one caption per clip from its (frames, dim) features and AudioSet tag mids, as one batch;
    (captions, length-normalised log-probabilities)."""
    frames, lengths = pad_frames(arrays)
    tag_hot = torch.from_numpy(multi_hot(tag_mids, captioner.classes))
    return caption_batch(captioner.model, captioner.vocab, frames, lengths, tag_hot, beam, max_tokens, device)
