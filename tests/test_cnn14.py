"""CNN14: exact length masking, a front-end equal to an independent numpy log-mel, the paper's size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blat_core.models.audio.cnn14 import Cnn14
from blat_core.models.audio.frontend import FrontEndConfig, LogMel
from blat_core.models.registry import AUDIO_ENCODERS

DEMO_CHANNELS = (8, 16, 32, 64, 128, 256)


def test_padded_clip_embeds_like_unpadded():
    """In eval mode a zero-padded clip gives the same frame and clip embeddings as the clip alone."""
    torch.manual_seed(0)
    model = Cnn14(16000, DEMO_CHANNELS).eval()
    lengths = torch.tensor([48000, 30001, 9000])
    batch = torch.zeros(3, 48000)
    clips = [torch.randn(int(n)) * 0.1 for n in lengths]
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    with torch.no_grad():
        padded = model.forward_embedding(batch, lengths)
        padded_frames = model.forward_frames(batch, lengths)
        frame_lengths = model.frame_lengths(lengths)
        for row, clip in enumerate(clips):
            alone = model.forward_embedding(clip[None])
            torch.testing.assert_close(padded[row], alone[0], rtol=1e-5, atol=1e-6)
            alone_frames = model.forward_frames(clip[None])[0]
            assert alone_frames.shape[0] == frame_lengths[row]
            torch.testing.assert_close(padded_frames[row, : frame_lengths[row]], alone_frames, rtol=1e-5, atol=1e-6)


def test_unmasked_padding_would_differ():
    """The test above is not vacuous: without lengths the padded clip embeds differently."""
    torch.manual_seed(0)
    model = Cnn14(16000, DEMO_CHANNELS).eval()
    clip = torch.randn(20000) * 0.1
    padded = torch.cat([clip, torch.zeros(28000)])[None]
    with torch.no_grad():
        assert not torch.allclose(model.forward_embedding(padded), model.forward_embedding(clip[None]), atol=1e-4)


def _numpy_logmel(wave: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """Independent reference: periodic Hann STFT (centred, reflect pad), Slaney mel (Slaney norm), dB."""
    n_fft, hop = config.n_fft, config.hop_length
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i : i + n_fft] * window for i in range(0, len(padded) - n_fft + 1, hop)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, n_fft/2+1)

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        linear = f / (200.0 / 3)
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_part, linear)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0), m * 200.0 / 3)

    edges = mel_to_hz(np.linspace(hz_to_mel(config.f_min), hz_to_mel(config.f_max), config.n_mels + 2))
    fft_freqs = np.linspace(0, config.sample_rate / 2, n_fft // 2 + 1)
    bank = np.zeros((config.n_mels, len(fft_freqs)))
    for m in range(config.n_mels):
        lower = (fft_freqs - edges[m]) / (edges[m + 1] - edges[m])
        upper = (edges[m + 2] - fft_freqs) / (edges[m + 2] - edges[m + 1])
        bank[m] = np.maximum(0, np.minimum(lower, upper)) * 2.0 / (edges[m + 2] - edges[m])
    return 10 * np.log10(np.maximum(power @ bank.T, 1e-10))


@pytest.mark.parametrize("rate", [16000, 32000])
def test_frontend_matches_numpy_reference(rate):
    config = FrontEndConfig.for_rate(rate)
    wave = np.random.default_rng(rate).standard_normal(rate // 2).astype(np.float32) * 0.1
    ours = LogMel(config)(torch.from_numpy(wave)[None])[0].numpy()
    reference = _numpy_logmel(wave, config)
    assert ours.shape == reference.shape == (1 + len(wave) // config.hop_length, 64)
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_paper_size_parameter_count():
    """Full CNN14: 79.7M parameters without the AudioSet head (79,673,792), 80.75M with 527 classes."""
    assert sum(p.numel() for p in Cnn14(32000).parameters()) == 79_673_792
    assert sum(p.numel() for p in Cnn14(32000, num_classes=527).parameters()) == 79_673_792 + 2048 * 527 + 527


def test_registry_lists_valid_names():
    assert isinstance(AUDIO_ENCODERS.build("cnn14", sample_rate=16000, channels=list(DEMO_CHANNELS)), Cnn14)
    with pytest.raises(ValueError, match="unknown audio encoder 'cnn10'; valid: cnn14"):
        AUDIO_ENCODERS.build("cnn10", sample_rate=16000, channels=[])
