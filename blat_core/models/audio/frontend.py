"""CNN14's log-mel front-end (SPEC §2): STFT (Hann, centred, reflect pad) -> Slaney mel -> dB.

Clips in a zero-padded batch are first "reflect-filled" past their end, so every valid frame of a
padded clip equals the frame of the same clip computed alone (torch's centred STFT reflects there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio
from torch import nn


@dataclass(frozen=True)
class FrontEndConfig:
    """STFT and mel settings; the two variants PANNs ships are `for_rate(32000)` and `for_rate(16000)`."""

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 14000.0

    @staticmethod
    def for_rate(sample_rate: int) -> FrontEndConfig:
        if sample_rate == 32000:
            return FrontEndConfig(32000, n_fft=1024, hop_length=320, f_max=14000.0)
        if sample_rate == 16000:
            return FrontEndConfig(16000, n_fft=512, hop_length=160, f_max=8000.0)
        raise ValueError(f"CNN14 front-ends exist for 16000 and 32000 Hz, not {sample_rate}")


class LogMel(nn.Module):
    """(B, samples) float waveform -> (B, frames, mel) log-mel in dB (10·log10(max(x, 1e-10)), no top_db)."""

    def __init__(self, config: FrontEndConfig):
        super().__init__()
        self.config = config
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=config.n_fft,
            win_length=config.n_fft,
            hop_length=config.hop_length,
            window_fn=torch.hann_window,
            center=True,
            pad_mode="reflect",
            power=2.0,
        )
        self.mel = torchaudio.transforms.MelScale(
            n_mels=config.n_mels,
            sample_rate=config.sample_rate,
            f_min=config.f_min,
            f_max=config.f_max,
            n_stft=config.n_fft // 2 + 1,
            norm="slaney",
            mel_scale="slaney",
        )

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames a clip of `lengths` samples has (centred STFT)."""
        return 1 + torch.div(lengths, self.config.hop_length, rounding_mode="floor")

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            waveform = reflect_fill(waveform, lengths, self.config.n_fft // 2)
        with torch.autocast(waveform.device.type, enabled=False):  # the STFT and the dB stay in float32
            power = self.mel(self.spectrogram(waveform.float()))  # (B, mel, frames)
            return (10.0 * torch.log10(torch.clamp(power, min=1e-10))).transpose(1, 2)


def reflect_fill(waveform: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Replace the `width` samples after each clip's end by the reflection torch's STFT would pad with."""
    batch, total = waveform.shape
    positions = torch.arange(total, device=waveform.device).expand(batch, total)
    ends = lengths.to(waveform.device).unsqueeze(1)
    inside_fill = (positions >= ends) & (positions < ends + width)
    source = (2 * (ends - 1) - positions).clamp(min=0, max=total - 1)
    reflected = torch.gather(waveform, 1, source)
    return torch.where(inside_fill, reflected, waveform)
