"""Signal building blocks of the procedural sound events: time axes, phases, band-limited noise,
envelopes, placement and repetition."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def time(sr: int, seconds: float) -> np.ndarray:
    return np.arange(max(1, int(round(sr * seconds)))) / sr


def harmonics(phase: np.ndarray, amplitudes: list[float]) -> np.ndarray:
    return sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amplitudes))


def phase(freq: np.ndarray | float, sr: int, length: int) -> np.ndarray:
    freq = np.broadcast_to(np.asarray(freq, dtype=np.float64), (length,))
    return 2 * np.pi * np.cumsum(freq) / sr


def band_noise(rng: np.random.Generator, sr: int, length: int, low: float, high: float) -> np.ndarray:
    """White noise band-limited to [low, high] Hz by an FFT mask."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1 / sr)
    spectrum[(freqs < low) | (freqs > min(high, sr / 2))] = 0
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (np.abs(noise).max() + 1e-9)


def decay(length: int, sr: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(length) / (sr * seconds))


def attack_release(length: int, sr: int, attack: float = 0.01, release: float = 0.05) -> np.ndarray:
    env = np.ones(length)
    a, r = min(length, int(sr * attack)), min(length, int(sr * release))
    if a:
        env[:a] = np.linspace(0, 1, a)
    if r:
        env[-r:] *= np.linspace(1, 0, r)
    return env


def place(length: int, pieces: list[tuple[int, np.ndarray]]) -> np.ndarray:
    out = np.zeros(length)
    for start, piece in pieces:
        end = min(length, start + len(piece))
        if start < end:
            out[start:end] += piece[: end - start]
    return out


def repeat(
    rng: np.random.Generator,
    sr: int,
    seconds: float,
    make: Callable[[], np.ndarray],
    gap: tuple[float, float],
    count: tuple[int, int],
) -> np.ndarray:
    """Repeat `make()` a random number of times with random gaps, trimmed to `seconds`."""
    pieces, cursor = [], 0
    for _ in range(rng.integers(count[0], count[1] + 1)):
        piece = make()
        pieces.append((cursor, piece))
        cursor += len(piece) + int(sr * rng.uniform(*gap))
    length = min(cursor, int(sr * seconds))
    return place(max(length, 1), pieces)


def nyq(sr: int, freq: float) -> float:
    return min(freq, 0.45 * sr)
