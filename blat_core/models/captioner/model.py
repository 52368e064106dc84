"""Captioner (SPEC §2): BiGRU encoder over frame features -> memory; 2-layer Transformer decoder whose
word embeddings get the clip's mean AudioSet-tag embedding added at every step (tag guidance)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequencies)
    table[:, 1::2] = torch.cos(position * frequencies)
    return table


class Captioner(nn.Module):
    """(frames, frame lengths, tag multi-hot, caption prefix) -> next-word logits."""

    def __init__(
        self,
        feature_dim: int,
        vocab_size: int,
        num_tags: int,
        use_tags: bool = True,
        hidden: int = 256,
        d_model: int = 256,
        heads: int = 4,
        ffn: int = 1024,
        layers: int = 2,
        encoder_layers: int = 3,
        encoder_dropout: float = 0.5,
        dropout: float = 0.2,
        max_positions: int = 64,
    ):
        super().__init__()
        self.encoder = nn.GRU(
            feature_dim,
            hidden,
            num_layers=encoder_layers,
            batch_first=True,
            bidirectional=True,
            dropout=encoder_dropout,
        )
        self.memory = nn.Sequential(
            nn.Linear(2 * hidden, d_model), nn.ReLU(), nn.Dropout(dropout), nn.LayerNorm(d_model)
        )
        self.embed = nn.Embedding(vocab_size, d_model)
        self.tags = nn.Embedding(num_tags, d_model) if use_tags else None
        self.register_buffer("positions", sinusoidal_positions(max_positions, d_model), persistent=False)
        layer = nn.TransformerDecoderLayer(d_model, heads, ffn, dropout, batch_first=True, norm_first=False)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.output = nn.Linear(d_model, vocab_size)  # untied from the input embedding
        self.dropout = nn.Dropout(dropout)
        self.d_model = d_model

    def encode(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) frames -> memory (B, T, d_model) and its padding mask (B, T), True where padded."""
        packed = nn.utils.rnn.pack_padded_sequence(frames, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.encoder(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=frames.shape[1])
        padding = torch.arange(frames.shape[1], device=frames.device)[None] >= lengths.to(frames.device)[:, None]
        return self.memory(output), padding

    def tag_embedding(self, tags: torch.Tensor) -> torch.Tensor | None:
        """Mean embedding of each clip's tags (B, d_model); zeros for a clip without tags."""
        if self.tags is None:
            return None
        weights = tags / tags.sum(dim=1, keepdim=True).clamp(min=1.0)
        return weights @ self.tags.weight

    def decode(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        memory_padding: torch.Tensor,
        tag_embedding: torch.Tensor | None,
    ) -> torch.Tensor:
        """(B, L) token prefix -> (B, L, vocab) logits, causally masked."""
        words = self.embed(tokens)
        if tag_embedding is not None:
            words = words + tag_embedding[:, None, :]  # tag guidance: added before the positions
        words = words * math.sqrt(self.d_model)
        words = self.dropout(words + self.positions[: tokens.shape[1]])
        length = tokens.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), diagonal=1)
        hidden = self.decoder(
            words, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=memory_padding
        )
        return self.output(hidden)

    def forward(self, frames, lengths, tags, tokens) -> torch.Tensor:
        memory, padding = self.encode(frames, lengths)
        return self.decode(tokens, memory, padding, self.tag_embedding(tags))
