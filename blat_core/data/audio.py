"""Decoding audio files with bounded memory: read in blocks, mixed to mono, stopped at a duration cap.

`load_clip` returns one clip as int16 mono at the target rate (what `prepare`, the CLI and `blat serve`
read). `stream_clip` yields the same samples in pieces, resampled piece by piece with the whole-file
resampler's kernel and context (a file up to one block is one call, bit for bit `load_clip`'s; across blocks
the same sums in another order: rarely a 1-LSB difference), so a file of any length embeds in constant memory.

Any sample rate a header may name resamples in bounded memory: torchaudio's sinc resampler precomputes one
filter per output phase, `new × (orig + 2·width)` floats for the rates divided by their gcd, which for a pair such
as 44,101 → 32,000 Hz is 32,000 × 44,119 (gigabytes, and a 40 kB WAV may name that rate). Pairs whose kernel
stays under KERNEL_LIMIT use torchaudio's (every common rate: 44.1k, 48k, 22.05k, 11.025k, 8k, 96k, …; a few
kept in a bounded cache); any other pair uses `SincResampler`, the same windowed-sinc filter evaluated for
blocks of output samples (only the taps each output reads; equal to torchaudio's within float rounding). Rates
outside SUPPORTED_RATES are refused: no audio recorder writes them.

A header's length is a hint, never trusted: a FLAC written to a pipe says 0 frames (libsndfile then
reports an absurd count), and a lying header may under-report; decoding stops as soon as more than the
cap has been read, so a small "decompression bomb" costs at most the cap's worth of samples.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from math import gcd

import numpy as np
import soundfile as sf

from blat_core.data.sources import regular_file_problem

BLOCK_FRAMES = 1 << 18  # frames read per step (5.5 s at 48 kHz): the decode buffer never holds a whole file
PLAUSIBLE_FRAMES = 1 << 50  # above this a header's frame count means "unknown" (SF_COUNT_MAX for a piped FLAC)
SUPPORTED_RATES = (1_000, 1_000_000)  # Hz: telephone audio is 8 kHz, the fastest audio converters 768 kHz
KERNEL_LIMIT = 1 << 21  # floats in a torchaudio kernel we build (8 MiB); larger pairs use SincResampler
CACHED_KERNELS = 8  # torchaudio resamplers kept per process (a server meets many rates: at most 8 × 8 MiB)
LOWPASS_WIDTH, ROLLOFF = 6, 0.99  # torchaudio's defaults: zero crossings of the sinc each side, cutoff


class AudioError(Exception):
    """A file that cannot be used as a clip: `reason` is the skip reason prepare counts, `detail` the why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason} ({detail})")
        self.reason, self.detail = reason, detail


def header_frames(info) -> int | None:
    """The header's frame count, or None when it is unknown (0, or an absurd value)."""
    return info.frames if 0 < info.frames < PLAUSIBLE_FRAMES else None


def mono_blocks(path: str, max_seconds: float = math.inf, block_frames: int | None = None,
                limit: str = "prepare.max_seconds"):
    """(source rate, iterator of float32 mono blocks) of a regular audio file. Raises `AudioError` at open
    (missing, special, empty, unreadable, or longer than `max_seconds` by its header) and from the iterator
    (corrupt data, non-finite samples, or more than `max_seconds` decoded: the read stops there)."""
    problem = regular_file_problem(path)
    if problem:
        raise AudioError(*problem)
    if os.path.getsize(path) == 0:
        raise AudioError("empty_audio", "0-byte file")
    try:
        handle = sf.SoundFile(path)
    except Exception as error:  # soundfile raises several types for corrupt files
        raise AudioError("unreadable_audio", f"{type(error).__name__}: {error}") from None
    rate = handle.samplerate
    frames = header_frames(handle)
    if not SUPPORTED_RATES[0] <= rate <= SUPPORTED_RATES[1]:
        handle.close()
        raise AudioError("unreadable_audio", f"sample rate {rate} Hz, outside the {SUPPORTED_RATES[0]:,}–"
                         f"{SUPPORTED_RATES[1]:,} Hz of real recordings (a damaged or forged header?)")  # fmt: skip
    if frames is not None and frames / rate > max_seconds:
        handle.close()
        raise AudioError("too_long", f"{frames / rate:.1f} s > {limit}={max_seconds}")
    cap, block_frames = max_seconds * rate, block_frames or BLOCK_FRAMES

    def blocks() -> Iterator[np.ndarray]:
        read = 0
        with handle:
            buffer = np.empty((block_frames, handle.channels), dtype=np.float32)
            while True:
                try:
                    block = buffer[: _read_into(handle, buffer)]
                except Exception as error:
                    raise AudioError("unreadable_audio", f"{type(error).__name__}: {error}") from None
                if len(block) == 0:
                    return
                read += len(block)
                if read > cap:
                    raise AudioError("too_long", f"more than {limit}={max_seconds} s (decoding stopped there)")
                mono = block.mean(axis=1)
                if not np.isfinite(mono).all():
                    raise AudioError("unreadable_audio", "non-finite samples")
                yield mono

    return rate, blocks()


def _read_into(handle: sf.SoundFile, out: np.ndarray) -> int:
    """Frames libsndfile decodes into `out` (frames, channels), float32: its `sf_readf_float` called directly,
    because soundfile's `read` seeks after every read, which fails at the end of a FLAC whose header gives no
    length (the last block would be lost with an error). soundfile's version is pinned by the lock; the
    length-0 FLAC test checks this call."""
    from soundfile import _error_check, _ffi, _snd

    frames = _snd.sf_readf_float(handle._file, _ffi.cast("float *", out.ctypes.data), len(out))
    _error_check(handle._errorcode)
    return int(frames)


def resampler(source_rate: int, target_rate: int):
    """A sinc resampler for this pair of rates, called on a float32 tensor or array: torchaudio's when its
    kernel is small (cached, at most CACHED_KERNELS), else `SincResampler` (bounded memory for any pair)."""
    sinc = SincResampler(source_rate, target_rate)
    if sinc.new * (sinc.orig + 2 * sinc.width) <= KERNEL_LIMIT:
        return _torchaudio_resampler(source_rate, target_rate)
    return sinc


@functools.lru_cache(maxsize=CACHED_KERNELS)
def _torchaudio_resampler(source_rate: int, target_rate: int):
    import torchaudio

    return torchaudio.transforms.Resample(source_rate, target_rate)


class SincResampler:
    """torchaudio's default resampler (Hann-windowed sinc, LOWPASS_WIDTH zero crossings, ROLLOFF) computed per
    output sample instead of per phase: output j at input time j·orig/new reads the `2·width + 2` inputs around
    it, with zeros beyond the ends, so memory is a block of outputs × taps whatever the rates. Its `width` and
    the gcd-reduced `orig`/`new` are torchaudio's (the streaming in `_resampled` relies on them)."""

    BLOCK_ELEMENTS = 1 << 20  # outputs × taps evaluated at once (8 MiB of float64 per array)

    def __init__(self, source_rate: int, target_rate: int):
        common = gcd(source_rate, target_rate)
        self.orig, self.new = source_rate // common, target_rate // common
        self.base = min(self.orig, self.new) * ROLLOFF
        self.width = math.ceil(LOWPASS_WIDTH * self.orig / self.base)

    def __call__(self, samples):
        import torch

        if isinstance(samples, torch.Tensor):
            return torch.from_numpy(self.resample(samples.numpy()))
        return self.resample(samples)

    def resample(self, samples: np.ndarray) -> np.ndarray:
        """float32 samples at the target rate: ceil(len · new / orig) of them, as torchaudio returns."""
        length = len(samples)
        count = -(-length * self.new // self.orig)
        taps = np.arange(2 * self.width + 2, dtype=np.int64)
        padded = np.concatenate([np.zeros(self.width + 1, np.float32), samples.astype(np.float32, copy=False),
                                 np.zeros(self.width + 2, np.float32)])  # fmt: skip
        out = np.empty(count, dtype=np.float32)
        step = max(1, self.BLOCK_ELEMENTS // len(taps))
        for first in range(0, count, step):
            outputs = np.arange(first, min(count, first + step), dtype=np.int64)
            inputs = (outputs * self.orig // self.new - self.width)[:, None] + taps  # (outputs, taps) input indices
            # t = (i / orig - j / new) · base, from exact integers; clamped and windowed as torchaudio does.
            t = (inputs * self.new - outputs[:, None] * self.orig) / (self.orig * self.new) * self.base
            t = np.clip(t, -LOWPASS_WIDTH, LOWPASS_WIDTH)
            window = np.cos(t * math.pi / LOWPASS_WIDTH / 2) ** 2
            t *= math.pi
            kernel = np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t)) * window * (self.base / self.orig)
            out[outputs] = (padded[inputs + self.width + 1] * kernel).sum(axis=1)  # float64 sums
        return out


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return samples
    import torch

    with torch.no_grad():
        return np.asarray(resampler(source_rate, target_rate)(torch.from_numpy(samples)))


def quantise(mono: np.ndarray) -> np.ndarray:
    return np.clip(np.round(mono * 32767.0), -32768, 32767).astype(np.int16)


def load_clip(
    path: str, target_rate: int, silence_dbfs: float, min_seconds: float = 0.0, max_seconds: float = math.inf,
    limit: str = "prepare.max_seconds",
) -> tuple[np.ndarray | None, str, str]:
    """Read, mono-mix, resample and quantise one file; (int16 samples, "", "") or (None, reason, detail).

    Only a regular file is opened (a FIFO would block forever). Decoding reads blocks and stops once more
    than `max_seconds` were read (`too_long`, its detail naming the limit as `limit`), whatever the header says."""
    try:
        rate, blocks = mono_blocks(path, max_seconds, limit=limit)
        pieces = list(blocks)
    except AudioError as error:
        return None, error.reason, error.detail
    mono = pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if len(mono) == 0:
        return None, "empty_audio", "0 samples"
    if len(mono) / rate < min_seconds:
        return None, "too_short", f"{len(mono) / rate:.4f} s < prepare.min_seconds={min_seconds}"
    mono = resample(mono, rate, target_rate)
    peak = float(np.abs(mono).max())
    if peak == 0 or 20 * np.log10(peak) < silence_dbfs:
        return None, "silent_audio", f"peak {20 * np.log10(max(peak, 1e-12)):.1f} dBFS"
    return quantise(mono), "", ""


def stream_clip(path: str, target_rate: int, max_seconds: float = math.inf, limit: str = "--max-seconds"
                ) -> Iterator[np.ndarray]:  # fmt: skip
    """The int16 samples `load_clip(path, target_rate, -inf)` returns (see the module docstring for the rare 1-LSB
    difference across blocks), as consecutive pieces, holding about one block of the file at a time. Raises
    `AudioError` (possibly after some pieces: a caller discards them)."""
    rate, blocks = mono_blocks(path, max_seconds, limit=limit)
    total, peak = 0, 0.0
    pieces = blocks if rate == target_rate else _resampled(blocks, rate, target_rate)
    for piece in pieces:
        total += len(piece)
        peak = max(peak, float(np.abs(piece).max()) if len(piece) else 0.0)
        yield quantise(piece)
    if total == 0:
        raise AudioError("empty_audio", "0 samples")
    if peak == 0:
        raise AudioError("silent_audio", "peak -240.0 dBFS")


def _resampled(blocks: Iterator[np.ndarray], source_rate: int, target_rate: int) -> Iterator[np.ndarray]:
    """Resample a stream piece by piece with the whole-stream result (up to float summation order).

    torchaudio's kernel maps each group of `orig` input samples (the rates divided by their gcd) to `new`
    output samples, reading `width` samples either side. A piece that starts on a group boundary and carries
    at least that much context on both sides therefore yields the whole-signal outputs of its groups;
    the true ends are zero-padded by torchaudio as in the whole-signal call."""
    common = gcd(source_rate, target_rate)
    orig, new = source_rate // common, target_rate // common
    width = resampler(source_rate, target_rate).width
    context = -(-width // orig) * orig + orig  # >= width + orig, a whole number of groups
    step = max(1, BLOCK_FRAMES // orig) * orig  # samples emitted per piece, a whole number of groups
    buffer = np.zeros(0, dtype=np.float32)
    start = 0  # global index of buffer[0]; always a group boundary
    emitted = 0  # global input index up to which outputs have been emitted
    done = False
    while not done:
        block = next(blocks, None)
        if block is None:
            done = True
        else:
            buffer = np.concatenate([buffer, block])
        while buffer.size and (done or start + len(buffer) - emitted >= step + context):
            end = start + len(buffer) if done else emitted + step  # input range [emitted, end) this piece covers
            left = max(start, emitted - context)
            segment = buffer[left - start : (start + len(buffer) if done else end + context) - start]
            out = resample(segment, source_rate, target_rate)
            first = (emitted - left) // orig * new
            count = (-(-(end - left) * new // orig) if done else (end - left) // orig * new) - first
            yield out[first : first + count]
            emitted = end
            drop = max(0, emitted - context) - start
            drop -= drop % orig
            buffer, start = buffer[drop:], start + drop
            if done:
                return
