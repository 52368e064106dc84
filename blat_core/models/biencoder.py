"""The BLAT audio–text bi-encoder (SPEC §2) and its symmetric InfoNCE loss over the global batch.

Attribute names follow the authors' checkpoint (`audio_encoder.`, `text_encoder.model.`, `audio_proj.`,
`text_proj.`, `logit_scale`), so importing their weights is a key-for-key load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class BiEncoderOutput:
    audio: torch.Tensor  # (B, E) L2-normalised
    text: torch.Tensor  # (B, E) L2-normalised
    logit_scale: torch.Tensor  # scalar, exp(log scale)


class BiEncoder(nn.Module):
    """Audio tower + text tower, one linear projection each to a shared space, learnable logit scale."""

    def __init__(
        self,
        audio_encoder: nn.Module,
        text_encoder: nn.Module,
        embed_dim: int,
        logit_scale_init: float = math.log(1 / 0.07),
        logit_scale_max: float | None = None,
    ):
        super().__init__()
        self.audio_encoder, self.text_encoder = audio_encoder, text_encoder
        self.audio_proj = nn.Linear(audio_encoder.embedding_dim, embed_dim)
        self.text_proj = nn.Linear(text_encoder.embedding_dim, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.logit_scale_max = logit_scale_max
        self.embed_dim = embed_dim

    def audio_embedding(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, samples) -> (B, audio dim) clip embedding before the projection (for probes and fine-tuning)."""
        return self.audio_encoder.forward_embedding(waveform, lengths)

    def encode_audio(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.audio_proj(self.audio_embedding(waveform, lengths)).float(), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(self.text_encoder(input_ids, attention_mask)).float(), dim=-1)

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), capped at exp(logit_scale_max) when a cap is set (None: unclamped, as the reference)."""
        if self.logit_scale_max is None:
            return self.logit_scale.exp()
        return self.logit_scale.clamp(max=self.logit_scale_max).exp()

    def forward(self, waveform, lengths, input_ids, attention_mask) -> BiEncoderOutput:
        return BiEncoderOutput(
            self.encode_audio(waveform, lengths), self.encode_text(input_ids, attention_mask), self.scale()
        )


def gather_with_grad(embeddings: torch.Tensor) -> torch.Tensor:
    """(B_local, E) -> (B_global, E) in rank order; gradients flow back to every rank's slice."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return embeddings
    if torch.distributed.get_world_size() == 1:
        return embeddings
    import torch.distributed.nn.functional as distributed_nn

    return torch.cat(distributed_nn.all_gather(embeddings), dim=0)


class ContrastiveLoss(nn.Module):
    """Mean of the audio->text and text->audio cross-entropies over the global batch.

    Every rank computes the same global loss; with gradients gathered back (a sum over ranks) and DDP
    averaging over ranks, each parameter gets exactly the single-process gradient of that loss.
    """

    def forward(self, audio: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        audio, text = gather_with_grad(audio), gather_with_grad(text)
        logits = logit_scale * audio @ text.t()  # (B, B): row i = clip i against every caption
        targets = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
