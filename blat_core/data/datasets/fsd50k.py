"""FSD50K (Fonseca et al. 2022): Freesound clips of variable length with AudioSet-ontology labels,
dev (train/val) and eval; multi-label classification (Table 5: mAP on eval).

Metadata: FSD50K.ground_truth/{vocabulary,dev,eval}.csv.
"""

from __future__ import annotations

from pathlib import Path

from blat_core.atomic import csv_text
from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import Problem, ReadResult, SourceRow, csv_rows, require
from blat_core.data.demo import labels
from blat_core.data.demo.writers import write


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    vocab_path = require(meta / "vocabulary.csv", "point prepare.datasets.fsd50k.meta at FSD50K.ground_truth/")
    vocabulary = {fields[1]: fields[2] for _, fields in csv_rows(vocab_path, header=False) if len(fields) == 3}
    result = ReadResult()
    for subset in ("dev", "eval"):
        path = require(meta / f"{subset}.csv", "FSD50K ground truth files are dev.csv and eval.csv")
        for line, fields in csv_rows(path):
            result.rows_read += 1
            ref = f"{subset}.csv:{line}"
            expected = 4 if subset == "dev" else 3
            if len(fields) != expected or not fields[0]:
                result.problems.append(Problem(ref, fields[0], "malformed_row", f"expected {expected} fields"))
                continue
            names = [n for n in fields[1].split(",") if n]
            for name in (n for n in names if n not in vocabulary):
                result.problems.append(Problem(ref, fields[0], "unknown_label", name))
            known = [n for n in names if n in vocabulary]
            if not known:
                result.problems.append(Problem(ref, fields[0], "no_known_labels", fields[1]))
                continue
            split = fields[3] if subset == "dev" else "eval"
            path_in_audio = pattern.format(fname=fields[0], subset=subset)
            tag_mids = [vocabulary[n] for n in known]
            result.rows.append(
                SourceRow(fields[0], split, path_in_audio, ref, labels=known, tag_mids=tag_mids, tag_names=known)
            )
    return result


# ---------------------------------------------------------------- demo
def plan_demo(planner, shared: dict) -> None:
    """Variable-length clips with one or two labelled events; dev (train/val) and eval."""
    p, rng, fname = planner.p, planner.rng, 10_000
    for subset, split_options in (("dev", ("train", "train", "train", "val")), ("eval", ("eval",))):
        for _ in range(p.count(f"fsd50k_{subset}")):
            fname += int(rng.integers(1, 50))
            events = planner.events(tuple(labels.FSD50K), min(p.max_events, 2))
            seconds = float(rng.uniform(0.3, 1.0)) * p.clip_seconds
            path = f"fsd50k/FSD50K.{subset}_audio/{fname}.wav"
            clip = planner.clip(path, ("fsd50k", fname), p.sample_rates["fsd50k"], seconds, events)
            planner.corpus.add("fsd50k", clip, {"fname": fname, "subset": subset, "split": rng.choice(split_options)})


def write_demo(rows, placed, root: Path, seed: int) -> None:
    folder = root / "fsd50k" / "FSD50K.ground_truth"
    vocabulary = sorted(labels.FSD50K.values())
    write(folder / "vocabulary.csv", csv_text([i, label, mid] for i, (label, mid) in enumerate(vocabulary)))
    for subset in ("dev", "eval"):
        lines = []
        for plan, r in rows:
            if r["subset"] != subset:
                continue
            pairs = sorted(labels.FSD50K[e.key] for e in placed[plan.path])
            line = [r["fname"], ",".join(p[0] for p in pairs), ",".join(p[1] for p in pairs)]
            lines.append(line + ([r["split"]] if subset == "dev" else []))
        header = ["fname", "labels", "mids"] + (["split"] if subset == "dev" else [])
        write(folder / f"{subset}.csv", csv_text(lines, header))


RECIPE = Recipe(
    name="fsd50k",
    order=70,
    read=read,
    pattern_fields={"fname": "1", "subset": "dev"},
    eval_splits=frozenset({"eval"}),
    plan_demo=plan_demo,
    write_demo=write_demo,
    demo_order=80,
    demo_sizes=("fsd50k_dev", "fsd50k_eval"),
    classification=Classification(multi_label=True, primary_metric="mAP", train_splits=("train", "val"),
                                  test_split="eval"),  # fmt: skip
)
