"""What the evaluation tasks share: seed summaries."""

from __future__ import annotations

import numpy as np


def mean_std(runs: list[dict[str, float]]) -> dict:
    """{key: {"mean", "std", "seeds": [...]}} over the runs of several seeds."""
    return {
        key: {"mean": float(np.mean([r[key] for r in runs])), "std": float(np.std([r[key] for r in runs])),
              "seeds": [r[key] for r in runs]}
        for key in runs[0]
    }  # fmt: skip
