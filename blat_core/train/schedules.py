"""Learning-rate schedules, all of them: pure multipliers of the base LR (applied through LambdaLR by the
loop). The tagger and pre-training warm up then decay by a cosine, the captioner warms up then decays
exponentially (SPEC §2), the fine-tunes keep a constant rate."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warmup to 1, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_exponential(step: int, total: int, warmup: int, lr: float, final_lr: float) -> float:
    """Linear warmup to 1, then exponential decay reaching final_lr / lr at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - 1 - warmup)
    return (final_lr / lr) ** min(1.0, progress)


def constant(step: int) -> float:
    """The base LR throughout."""
    return 1.0
