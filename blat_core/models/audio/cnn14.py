"""CNN14 in the PANNs layout (SPEC §2), with exact length masking for zero-padded batches.

Masking zeroes every frame past a clip's length before each convolution, which is what the
convolution's own zero padding sees for the clip alone; so a padded clip embeds exactly like the
unpadded one (in eval mode). Channel widths are configurable: the demo runs the same layout narrower.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blat_core.models.audio.frontend import FrontEndConfig, LogMel

PAPER_CHANNELS = (64, 128, 256, 512, 1024, 2048)


def _mask_frames(x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Zero time steps >= `frames` of (B, C, T, F) features."""
    valid = torch.arange(x.shape[2], device=x.device).unsqueeze(0) < frames.unsqueeze(1)  # (B, T)
    return x * valid[:, None, :, None].to(x.dtype)


class ConvBlock(nn.Module):
    """[3×3 conv (no bias) → BN → ReLU] × 2, then optional 2×2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, frames: torch.Tensor | None, pool: bool) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        if frames is not None:
            x = _mask_frames(x, frames)
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=2) if pool else x


class Cnn14(nn.Module):
    """Waveform (B, samples) -> frame embeddings (B, T/32, C) and clip embedding (B, C); optional tag head."""

    def __init__(
        self,
        sample_rate: int = 32000,
        channels: tuple[int, ...] = PAPER_CHANNELS,
        num_classes: int = 0,
        dropout: float = 0.2,
        embedding_dropout: float = 0.5,
    ):
        super().__init__()
        if len(channels) != 6:
            raise ValueError(f"CNN14 has six conv blocks; got {len(channels)} channel widths")
        self.frontend = LogMel(FrontEndConfig.for_rate(sample_rate))
        self.bn0 = nn.BatchNorm2d(self.frontend.config.n_mels)
        widths = (1, *channels)
        self.blocks = nn.ModuleList(ConvBlock(widths[i], widths[i + 1]) for i in range(6))
        self.embedding_dim = channels[-1]
        self.fc1 = nn.Linear(self.embedding_dim, self.embedding_dim)
        self.head = nn.Linear(self.embedding_dim, num_classes) if num_classes else None
        self.dropout, self.embedding_dropout = dropout, embedding_dropout
        self.sample_rate = sample_rate

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frame-embedding steps per clip (one per 32 STFT frames, at least 1)."""
        return torch.clamp(torch.div(self.frontend.num_frames(lengths), 32, rounding_mode="floor"), min=1)

    def forward_frames(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, samples) -> (B, T', C) frame embeddings; steps past `frame_lengths(lengths)` are meaningless."""
        x = self.frontend(waveform, lengths)  # (B, T, mel)
        x = self.bn0(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # BatchNorm over mel bins
        x = x.unsqueeze(1)  # (B, 1, T, mel)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        frames = None if lengths is None else self.frontend.num_frames(lengths.to(x.device))
        for index, block in enumerate(self.blocks):
            if frames is not None:
                x = _mask_frames(x, frames)
            x = block(x, frames, pool=index < 5)
            if index < 5 and frames is not None:
                frames = torch.div(frames, 2, rounding_mode="floor")
            x = F.dropout(x, p=self.dropout, training=self.training)
        return x.mean(dim=3).transpose(1, 2)  # mean over frequency: (B, T', C)

    def pool(self, frames: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Clip embedding from frame embeddings: max + mean over valid frames -> dropout -> fc1 + ReLU."""
        if frame_lengths is None:
            pooled = frames.max(dim=1).values + frames.mean(dim=1)
        else:
            valid = (torch.arange(frames.shape[1], device=frames.device) < frame_lengths.unsqueeze(1)).unsqueeze(-1)
            masked_max = frames.masked_fill(~valid, float("-inf")).max(dim=1).values
            mean = (frames * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1)
            pooled = masked_max + mean
        pooled = F.dropout(pooled, p=self.embedding_dropout, training=self.training)
        return F.relu_(self.fc1(pooled))

    def forward_embedding(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, samples) -> (B, C) clip embedding (before any head)."""
        frames = self.forward_frames(waveform, lengths)
        return self.pool(frames, None if lengths is None else self.frame_lengths(lengths).to(frames.device))

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Tag logits (B, num_classes); the model must have been built with a head."""
        if self.head is None:
            raise RuntimeError("this CNN14 has no classification head (num_classes=0)")
        embedding = F.dropout(
            self.forward_embedding(waveform, lengths), p=self.embedding_dropout, training=self.training
        )
        return self.head(embedding)
