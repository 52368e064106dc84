"""What the evaluation tasks share: seed summaries and the code root their resume fingerprints hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CODE = [Path(__file__).resolve().parents[2]]  # blat_core: any code change invalidates a resume checkpoint


def mean_std(runs: list[dict[str, float]]) -> dict:
    """{key: {"mean", "std", "seeds": [...]}} over the runs of several seeds."""
    return {
        key: {"mean": float(np.mean([r[key] for r in runs])), "std": float(np.std([r[key] for r in runs])),
              "seeds": [r[key] for r in runs]}
        for key in runs[0]
    }  # fmt: skip
