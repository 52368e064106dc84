"""Deterministic embeddings with a bi-encoder: every clip whole (never a random crop), eval mode; and the
retrieval score of a bi-encoder on a retrieval set (validation and test)."""

from __future__ import annotations

import torch

from blat_core import compute
from blat_core.data import batching
from blat_core.data.pairs import RetrievalSet
from blat_core.data.prepared import PreparedDataset
from blat_core.eval.metrics.retrieval import retrieval_metrics
from blat_core.models.biencoder import BiEncoder


@torch.no_grad()
def embed_clips(
    model: BiEncoder,
    prepared: PreparedDataset,
    audio_ids: list[str],
    batch_size: int,
    device: torch.device,
    workers: int = 0,
) -> torch.Tensor:
    """(N, E) L2-normalised shared-space embeddings."""
    device = torch.device(device)
    batching.check_sample_rate(getattr(model.audio_encoder, "sample_rate", None), prepared, "the model")
    was_training = model.training
    model.eval()
    out = torch.empty(len(audio_ids), model.embed_dim)
    for wave, lengths, indices in batching.full_clips(prepared, audio_ids, batch_size, device, workers):
        with compute.autocast(device):
            out[indices] = model.encode_audio(wave, lengths).float().cpu()
    model.train(was_training)
    return out


@torch.no_grad()
def embed_captions(model: BiEncoder, tokenizer, captions: list[str], batch_size: int, device) -> torch.Tensor:
    """(M, E) L2-normalised caption embeddings."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, len(captions), batch_size):
        tokens = {k: v.to(device) for k, v in tokenizer(captions[start : start + batch_size]).items()}
        with compute.autocast(device):
            parts.append(model.encode_text(tokens["input_ids"], tokens["attention_mask"]).float().cpu())
    model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, model.embed_dim)


def score_retrieval(model, tokenizer, test: RetrievalSet, batch_size: int, device, workers: int = 0) -> dict:
    """`retrieval_metrics` of a bi-encoder on a retrieval set: full clips, eval mode (validation and test)."""
    audio = embed_clips(model, test.prepared, test.audio_ids, batch_size, device, workers)
    text = embed_captions(model, tokenizer, test.captions, batch_size, device)
    return retrieval_metrics(audio @ text.t(), test.caption_audio)
