"""Clotho v2 (Drossos et al. 2020): Freesound clips of 15-30 s with five captions each; a stage-2
pre-training source and a retrieval / captioning target (evaluation split).

Metadata: clotho_captions_{development,validation,evaluation}.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.datasets import Recipe
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require
from blat_core.data.demo import labels
from blat_core.data.demo.writers import captions, write

SPLITS = ("development", "validation", "evaluation")


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    result = ReadResult()
    for split in SPLITS:
        path = require(
            meta / f"clotho_captions_{split}.csv",
            "Clotho v2 caption files are clotho_captions_{development,validation,evaluation}.csv",
        )
        for line, fields in csv_rows(path):
            result.rows_read += 1
            ref = f"{path.name}:{line}"
            texts = [c.strip() for c in fields[1:] if c.strip()]
            if len(fields) != 6 or len(texts) != 5:
                detail = f"expected file_name and 5 captions, got {len(fields)} fields"
                result.problems.append(Problem(ref, fields[0], "malformed_row", detail))
                continue
            result.rows.append(
                SourceRow(fields[0], split, pattern.format(file_name=fields[0], split=split), ref, captions=texts)
            )
    return result


# ---------------------------------------------------------------- demo
def plan_demo(planner, shared: dict) -> None:
    """Longer Freesound-like clips (file names with spaces), five longer captions each."""
    p, rng = planner.p, planner.rng
    words = ["Rainy", "Urban", "Quiet", "Busy", "Morning", "Evening", "Kitchen", "Park", "Street", "Harbour"]
    for split in SPLITS:
        for i in range(p.count(f"clotho_{split}")):
            name = f"{rng.choice(words)} {rng.choice(words).lower()} recording {split[:3]}{i:04d}.wav"
            events = planner.events(labels.CAPTIONED, p.max_events)
            clip = planner.clip(
                f"clotho/audio/{split}/{name}", ("clotho", split, i), p.sample_rates["clotho"], p.clotho_seconds, events
            )
            planner.corpus.add("clotho", clip, {"file_name": name, "split": split})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    for split in SPLITS:
        lines = [
            [r["file_name"], *captions(seed, placed[plan.path], "clotho", 5, "clotho", r["file_name"])]
            for plan, r in rows
            if r["split"] == split
        ]
        header = ["file_name"] + [f"caption_{k}" for k in range(1, 6)]
        write(root / "clotho" / "metadata" / f"clotho_captions_{split}.csv", csv_text(lines, header))


RECIPE = Recipe(
    name="clotho",
    order=30,
    read=read,
    pattern_fields={"file_name": "x.wav", "split": "development"},
    eval_splits=frozenset({"validation", "evaluation"}),
    plan_demo=plan_demo,
    write_demo=write_demo,
    demo_order=40,
    demo_sizes=("clotho_development", "clotho_validation", "clotho_evaluation"),
    retrieval_target=True,
)
