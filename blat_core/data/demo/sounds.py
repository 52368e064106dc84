"""Procedural sound events, one generator per AudioSet class the demo uses.

Each generator draws its own variation (pitch, rate, duration, timbre) from the given random
generator, so two calls never sound the same, and returns a float32 waveform of peak ~1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from blat_core.data.demo import synth

Generator = Callable[[np.random.Generator, int, float], np.ndarray]


@dataclass(frozen=True)
class EventClass:
    """One procedural event class, named by its real AudioSet mid and display name."""

    key: str
    mid: str
    display_name: str
    stationary: bool
    generate: Generator


# ---------------------------------------------------------------- generators
def bark(rng, sr, seconds):
    f0 = rng.uniform(250, 600)

    def one():
        t = synth.time(sr, rng.uniform(0.08, 0.2))
        glide = f0 * (1 + 0.4 * np.exp(-t / 0.03))
        tone = synth.harmonics(synth.phase(glide, sr, len(t)), [1, 0.7, 0.5, 0.3, 0.2])
        rough = synth.band_noise(rng, sr, len(t), 400, 3000)
        return (tone + 0.6 * rough) * synth.decay(len(t), sr, 0.05) * synth.attack_release(len(t), sr, 0.005, 0.02)

    return synth.repeat(rng, sr, seconds, one, (0.12, 0.4), (2, 5))


def meow(rng, sr, seconds):
    t = synth.time(sr, min(seconds, rng.uniform(0.5, 1.1)))
    f0 = rng.uniform(400, 750)
    contour = f0 * (1 + 0.35 * np.sin(np.pi * t / t[-1])) * (1 + 0.02 * np.sin(2 * np.pi * 6 * t))
    tone = synth.harmonics(synth.phase(contour, sr, len(t)), [1, 0.8, 0.5, 0.4, 0.2, 0.1])
    return tone * np.clip(np.sin(np.pi * t / t[-1]), 0, 1) ** 0.7


def bird(rng, sr, seconds):
    base = synth.nyq(sr, rng.uniform(2500, 5000))

    def one():
        t = synth.time(sr, rng.uniform(0.04, 0.12))
        sweep = base * (1 + rng.uniform(-0.4, 0.4) * t / t[-1])
        return np.sin(synth.phase(sweep, sr, len(t))) * np.hanning(len(t))

    return synth.repeat(rng, sr, seconds, one, (0.03, 0.25), (4, 12))


def cricket(rng, sr, seconds):
    t = synth.time(sr, seconds)
    carrier = np.sin(2 * np.pi * synth.nyq(sr, rng.uniform(3800, 5200)) * t)
    pulses = (np.sin(2 * np.pi * rng.uniform(25, 45) * t) > 0.2).astype(float)
    chirp_rate = rng.uniform(1.5, 3.0)
    groups = (np.sin(2 * np.pi * chirp_rate * t) > -0.1).astype(float)
    return carrier * pulses * groups


def siren(rng, sr, seconds):
    t = synth.time(sr, seconds)
    low, high = rng.uniform(500, 750), rng.uniform(1100, 1600)
    rate = rng.uniform(0.15, 0.5) if rng.random() < 0.6 else rng.uniform(1.0, 1.6)
    sweep = low + (high - low) * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t))
    return synth.harmonics(synth.phase(sweep, sr, len(t)), [1, 0.4, 0.25, 0.1])


def church_bell(rng, sr, seconds):
    f0 = rng.uniform(180, 450)
    ratios = [0.5, 1.0, 1.19, 1.5, 2.0, 2.52, 3.01]
    ring, period = rng.uniform(1.0, 2.0), rng.uniform(0.7, 1.5)
    t = synth.time(sr, min(seconds, 2.5))
    strike = sum(
        np.sin(2 * np.pi * synth.nyq(sr, f0 * r) * t) * np.exp(-t * (1 + k) / ring) / (1 + 0.3 * k)
        for k, r in enumerate(ratios)
    )
    count = int(rng.integers(2, 6))
    return synth.place(int(sr * seconds), [(int(sr * k * period), strike) for k in range(count)])


def engine(rng, sr, seconds):
    t = synth.time(sr, seconds)
    firing = rng.uniform(25, 70) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t))
    tone = synth.harmonics(synth.phase(firing, sr, len(t)), [1, 0.8, 0.6, 0.5, 0.3, 0.3, 0.2, 0.1])
    rumble = synth.band_noise(rng, sr, len(t), 30, 400)
    return tone + 0.8 * rumble


def rain(rng, sr, seconds):
    length = len(synth.time(sr, seconds))
    hiss = synth.band_noise(rng, sr, length, rng.uniform(1500, 3000), 9000)
    drops = np.zeros(length)
    idx = rng.integers(0, length, int(rng.uniform(40, 120) * seconds))
    drops[idx] = rng.uniform(0.5, 1.5, len(idx))
    drops = np.convolve(drops, np.exp(-np.arange(int(sr * 0.004)) / (sr * 0.001)), mode="same")
    return 0.7 * hiss + drops


def wind(rng, sr, seconds):
    t = synth.time(sr, seconds)
    gust = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6))
    return synth.band_noise(rng, sr, len(t), 40, rng.uniform(400, 900)) * (0.3 + gust)


def thunder(rng, sr, seconds):
    t = synth.time(sr, seconds)
    start = rng.uniform(0, 0.3 * seconds)
    env = np.where(t >= start, np.exp(-(t - start) / rng.uniform(0.8, 1.6)), 0.0)
    crack = np.where((t >= start) & (t < start + 0.08), 1.0, 0.0)
    return synth.band_noise(rng, sr, len(t), 20, 250) * env + 0.5 * synth.band_noise(rng, sr, len(t), 500, 5000) * crack


def speech(rng, sr, seconds):
    t = synth.time(sr, min(seconds, rng.uniform(1.5, 3.5)))
    f0 = rng.uniform(95, 230) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = synth.phase(f0, sr, len(t))
    glottal = sum(np.sin(k * phase) / k for k in range(1, 25 if sr > 20000 else 15))
    vowels = [(700, 1200), (300, 2300), (500, 1000), (400, 2000), (600, 1700)]
    syllable_rate = rng.uniform(3, 5.5)
    choice = (t * syllable_rate).astype(int) % len(vowels)
    order = rng.permutation(len(vowels))
    f1 = np.array([vowels[order[c]][0] for c in range(len(vowels))])[choice]
    f2 = np.array([vowels[order[c]][1] for c in range(len(vowels))])[choice]
    shaped = glottal * (1 + np.sin(2 * np.pi * f1 * t) * 0.8 + np.sin(2 * np.pi * f2 * t) * 0.5)
    syllables = np.clip(np.sin(np.pi * t * syllable_rate), 0, 1) ** 0.5
    return shaped * syllables


def baby_cry(rng, sr, seconds):
    f0 = rng.uniform(350, 550)

    def one():
        t = synth.time(sr, rng.uniform(0.6, 1.2))
        contour = f0 * (1 + 0.15 * np.sin(np.pi * t / t[-1])) * (1 + 0.04 * np.sin(2 * np.pi * 9 * t))
        return synth.harmonics(synth.phase(contour, sr, len(t)), [1, 0.9, 0.7, 0.5, 0.3]) * np.sin(np.pi * t / t[-1])

    return synth.repeat(rng, sr, seconds, one, (0.2, 0.5), (2, 4))


def cough(rng, sr, seconds):
    def one():
        length = int(sr * rng.uniform(0.15, 0.3))
        noise = synth.band_noise(rng, sr, length, 250, 3500)
        return noise * synth.decay(length, sr, 0.06) * synth.attack_release(length, sr, 0.003)

    return synth.repeat(rng, sr, seconds, one, (0.1, 0.5), (1, 3))


def footsteps(rng, sr, seconds):
    step = 1 / rng.uniform(1.4, 2.3)

    def one():
        length = int(sr * 0.09)
        thud = synth.band_noise(rng, sr, length, 60, rng.uniform(500, 1500)) * synth.decay(length, sr, 0.02)
        gap = np.zeros(int(sr * step) - length)
        return np.concatenate([thud, gap])

    return synth.repeat(rng, sr, seconds, one, (0.0, 0.02), (3, 8))


def applause(rng, sr, seconds):
    length = len(synth.time(sr, seconds))
    claps = np.zeros(length)
    idx = rng.integers(0, length, int(rng.uniform(25, 60) * seconds))
    claps[idx] = rng.uniform(0.5, 1.0, len(idx))
    burst = synth.band_noise(rng, sr, int(sr * 0.01), 600, 6000) * synth.decay(int(sr * 0.01), sr, 0.002)
    return np.convolve(claps, burst, mode="same")


def knock(rng, sr, seconds):
    f = rng.uniform(140, 380)

    def one():
        t = synth.time(sr, 0.12)
        tone = np.sin(2 * np.pi * f * t) + 0.3 * synth.band_noise(rng, sr, len(t), 1000, 4000)
        return tone * synth.decay(len(t), sr, 0.015)

    return synth.repeat(rng, sr, seconds, one, (0.06, 0.25), (2, 5))


def tick_tock(rng, sr, seconds):
    period = 1 / rng.choice([1.0, 2.0, 3.0])
    tones = (rng.uniform(1500, 2500), rng.uniform(900, 1400))
    count = [0]

    def one():
        t = synth.time(sr, period)
        tone = tones[count[0] % 2]
        count[0] += 1
        return np.sin(2 * np.pi * synth.nyq(sr, tone) * t) * synth.decay(len(t), sr, 0.004)

    return synth.repeat(rng, sr, seconds, one, (0.0, 0.0), (4, 14))


def alarm_clock(rng, sr, seconds):
    f = synth.nyq(sr, rng.uniform(1800, 3200))

    def one():
        t = synth.time(sr, rng.uniform(0.06, 0.12))
        beep = np.sign(np.sin(2 * np.pi * f * t)) * 0.6 + np.sin(2 * np.pi * f * t) * 0.4
        return beep * synth.attack_release(len(t), sr, 0.002, 0.005)

    return synth.repeat(rng, sr, seconds, one, (0.05, 0.1), (6, 20))


def telephone(rng, sr, seconds):
    pair = (rng.uniform(400, 460), rng.uniform(470, 520))

    def one():
        t = synth.time(sr, rng.uniform(0.8, 1.6))
        trill = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(15, 25) * t))
        return (np.sin(2 * np.pi * pair[0] * t) + np.sin(2 * np.pi * pair[1] * t)) * trill

    return synth.repeat(rng, sr, seconds, one, (0.6, 1.5), (1, 3))


def car_horn(rng, sr, seconds):
    t = synth.time(sr, min(seconds, rng.uniform(0.3, 1.3)))
    f = rng.uniform(330, 480)
    tone = sum(np.tanh(3 * np.sin(2 * np.pi * f * r * t)) for r in (1.0, 1.26))
    return tone * synth.attack_release(len(t), sr, 0.01, 0.03)


def piano(rng, sr, seconds):
    scale = 220 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12) * rng.choice([1, 2])
    note_len = rng.uniform(0.2, 0.5)

    def one():
        t = synth.time(sr, note_len * rng.choice([1, 2]))
        f = rng.choice(scale)
        return synth.harmonics(2 * np.pi * f * t, [1, 0.5, 0.3, 0.15, 0.1]) * synth.decay(len(t), sr, 0.35)

    return synth.repeat(rng, sr, seconds, one, (0.0, 0.05), (4, 12))


def flute(rng, sr, seconds):
    scale = 523 * 2 ** (np.array([0, 2, 3, 5, 7, 8, 10]) / 12)

    def one():
        t = synth.time(sr, rng.uniform(0.3, 0.8))
        f = rng.choice(scale) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        tone = synth.harmonics(synth.phase(f, sr, len(t)), [1, 0.2, 0.1])
        breath = synth.band_noise(rng, sr, len(t), 1000, 6000)
        return (tone + 0.08 * breath) * synth.attack_release(len(t), sr, 0.05, 0.08)

    return synth.repeat(rng, sr, seconds, one, (0.0, 0.08), (3, 8))


def drill(rng, sr, seconds):
    t = synth.time(sr, min(seconds, rng.uniform(1.0, 3.0)))
    f = rng.uniform(600, 1200) * (1 + 0.3 * np.minimum(t / 0.5, 1))
    whine = synth.harmonics(synth.phase(f, sr, len(t)), [1, 0.6, 0.4, 0.3])
    return (whine + 0.4 * synth.band_noise(rng, sr, len(t), 2000, 8000)) * synth.attack_release(len(t), sr, 0.05, 0.1)


def jackhammer(rng, sr, seconds):
    rate = rng.uniform(10, 20)

    def one():
        length = int(sr / rate)
        hit = synth.band_noise(rng, sr, length, 100, 5000) * synth.decay(length, sr, 0.012)
        return hit + 0.4 * np.sin(2 * np.pi * rng.uniform(1500, 2500) * synth.time(sr, length / sr)) * synth.decay(
            length, sr, 0.01
        )

    return synth.repeat(rng, sr, seconds, one, (0.0, 0.0), (int(rate), int(rate * 3)))


def gunshot(rng, sr, seconds):
    def one():
        length = int(sr * rng.uniform(0.25, 0.5))
        return synth.band_noise(rng, sr, length, 80, 8000) * synth.decay(length, sr, rng.uniform(0.03, 0.08))

    return synth.repeat(rng, sr, seconds, one, (0.1, 0.7), (1, 3))


def helicopter(rng, sr, seconds):
    t = synth.time(sr, seconds)
    blade = rng.uniform(4, 8)
    thumps = np.clip(np.sin(2 * np.pi * blade * t), 0, 1) ** 8
    body = synth.band_noise(rng, sr, len(t), 40, 600)
    whine = 0.15 * np.sin(2 * np.pi * rng.uniform(900, 1300) * t)
    return body * (0.2 + thumps) + whine


def water_tap(rng, sr, seconds):
    t = synth.time(sr, seconds)
    bubbles = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * rng.uniform(5, 12) * t + rng.uniform(0, 3)))
    return synth.band_noise(rng, sr, len(t), rng.uniform(800, 1500), synth.nyq(sr, rng.uniform(4000, 7000))) * bubbles


EVENTS: tuple[EventClass, ...] = (
    EventClass("bark", "/m/05tny_", "Bark", False, bark),
    EventClass("meow", "/m/07qrkrw", "Meow", False, meow),
    EventClass("bird", "/m/020bb7", "Bird vocalization, bird call, bird song", False, bird),
    EventClass("cricket", "/m/09xqv", "Cricket", True, cricket),
    EventClass("siren", "/m/03kmc9", "Siren", True, siren),
    EventClass("church_bell", "/m/03w41f", "Church bell", False, church_bell),
    EventClass("engine", "/m/02mk9", "Engine", True, engine),
    EventClass("rain", "/m/06mb1", "Rain", True, rain),
    EventClass("wind", "/m/03m9d0z", "Wind", True, wind),
    EventClass("thunder", "/m/0ngt1", "Thunder", True, thunder),
    EventClass("speech", "/m/09x0r", "Speech", False, speech),
    EventClass("baby_cry", "/t/dd00002", "Baby cry, infant cry", False, baby_cry),
    EventClass("cough", "/m/01b_21", "Cough", False, cough),
    EventClass("footsteps", "/m/07pbtc8", "Walk, footsteps", False, footsteps),
    EventClass("applause", "/m/028ght", "Applause", True, applause),
    EventClass("knock", "/m/07r4wb8", "Knock", False, knock),
    EventClass("tick_tock", "/m/07qjznl", "Tick-tock", False, tick_tock),
    EventClass("alarm_clock", "/m/046dlr", "Alarm clock", False, alarm_clock),
    EventClass("telephone", "/m/07pp8cl", "Telephone bell ringing", False, telephone),
    EventClass("car_horn", "/m/0912c9", "Vehicle horn, car horn, honking", False, car_horn),
    EventClass("piano", "/m/05r5c", "Piano", False, piano),
    EventClass("flute", "/m/0l14j_", "Flute", False, flute),
    EventClass("drill", "/m/01d380", "Drill", False, drill),
    EventClass("jackhammer", "/m/03p19w", "Jackhammer", False, jackhammer),
    EventClass("gunshot", "/m/032s66", "Gunshot, gunfire", False, gunshot),
    EventClass("helicopter", "/m/09ct_", "Helicopter", True, helicopter),
    EventClass("water_tap", "/m/02jz0l", "Water tap, faucet", True, water_tap),
)
EVENTS_BY_KEY = {event.key: event for event in EVENTS}

# AudioSet classes the demo's captioned sets (AudioCaps, Clotho, MACS) never contain, so the
# synthesis tag filter (SPEC §2) has clips to drop and zero-shot sets have classes unseen in captions.
UNCAPTIONED = ("cricket", "drill", "jackhammer", "gunshot", "helicopter")


def render_event(event: EventClass, rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """Render one event no longer than `seconds`, normalised to peak 1 (the mixer sets the level)."""
    wave = np.asarray(event.generate(rng, sr, seconds), dtype=np.float64)[: int(sr * seconds)]
    peak = np.abs(wave).max()
    return (wave / peak if peak > 0 else wave).astype(np.float32)
