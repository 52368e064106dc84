"""Mix 1–3 procedural events over background noise at random SNR, and render a clip plan to a file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from blat_core.data.demo.captions import PlacedEvent
from blat_core.data.demo.sounds import EVENTS_BY_KEY, render_event


def seed_for(*parts: object) -> int:
    """A stable 64-bit seed from any parts (independent of process, order of work and Python hash)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one demo audio file."""

    path: str  # relative to the corpus root
    seed: int
    sample_rate: int
    seconds: float
    events: tuple[str, ...]
    snr_db: tuple[float, float]
    background_dbfs: tuple[float, float]
    channels: int = 1


def pink_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """Unit-RMS 1/f noise."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def mix(plan: ClipPlan) -> tuple[np.ndarray, list[PlacedEvent]]:
    """Render the mixture of `plan`: (samples, channels) float32 and where each event sits."""
    rng = np.random.default_rng(plan.seed)
    sr, length = plan.sample_rate, int(round(plan.sample_rate * plan.seconds))
    background_rms = 10 ** (rng.uniform(*plan.background_dbfs) / 20)
    out = pink_noise(rng, length) * background_rms
    placed = []
    for key in plan.events:
        event = EVENTS_BY_KEY[key]
        span = plan.seconds * (rng.uniform(0.5, 1.0) if event.stationary else rng.uniform(0.4, 0.9))
        wave = render_event(event, rng, sr, span)
        onset = int(rng.integers(0, max(1, length - len(wave) + 1)))
        snr_db = float(rng.uniform(*plan.snr_db))
        rms = np.sqrt(np.mean(wave**2)) + 1e-12
        out[onset : onset + len(wave)] += wave * (background_rms * 10 ** (snr_db / 20) / rms)
        placed.append(PlacedEvent(key, onset / sr, (onset + len(wave)) / sr, snr_db))
    if not np.isfinite(out).all():
        raise ValueError(f"demo generator produced non-finite samples for {plan.path} (events {plan.events})")
    peak = np.abs(out).max()
    if peak > 0.95:
        out *= 0.95 / peak
    if plan.channels > 1:
        # A little inter-channel difference, as in a real stereo recording.
        out = np.stack([out * (1 - 0.1 * c) for c in range(plan.channels)], axis=1)
    else:
        out = out[:, None]
    return out.astype(np.float32), placed


def render_to_file(plan: ClipPlan, root: str) -> list[PlacedEvent]:
    """Render `plan` into `root/plan.path` (WAV or FLAC by extension, 16-bit PCM)."""
    samples, placed = mix(plan)
    path = Path(root) / plan.path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, plan.sample_rate, subtype="PCM_16")
    return placed
