"""Stage `report`: metrics/report.md — the paper's Tables 2–5 with ours beside the paper's, the
miniature-claims check and the figures (metrics/figures/*.png, embedded) — plus each figure's rows as
metrics/plots/<figure>.json for `dvc plots show/diff`.

DVC runs: python stages/report.py --metrics metrics --out metrics/report.md --plots metrics/plots
          --figures metrics/figures --sources data/sources --demo-record data/demo.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from blat_core.atomic import atomic_path, write_json
from blat_core.data import sources
from blat_core.data.prepare import PrepareParams
from blat_core.eval.claims import claims
from blat_core.eval.deviations import load_settings
from blat_core.eval.figures import Inputs, draw_all, read_curve
from blat_core.eval.report import PAPER, ReportContext, corpus_words, figure_coverage, render
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("report")
CURVE = "plots/metrics/val/geometric_mean.tsv"  # in each pre-training stage's DVCLive folder
PRETRAIN_CURVES = (("stage1", "blat_stage1"), ("stage2", "blat_stage2"), ("realonly", "blat_realonly"))
DETAILS = "details/evaluate_zeroshot.json"  # per-class zero-shot results (the ESC-50 figure)
SOURCES = ("captioning_synthetic", "pretrain_stage1", "pretrain_stage2", "pretrain_realonly",
           "evaluate_retrieval", "evaluate_zeroshot", "evaluate_linear_probe", "evaluate_finetune",
           "evaluate_retrieval_finetune", "evaluate_captioning")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=Path, required=True, help="folder of the stages' metrics JSON files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="folder for each figure's rows (JSON)")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the figures (PNG)")
    parser.add_argument("--sources", type=Path, default=Path(sources.SOURCES), help="scan's fingerprints")
    parser.add_argument("--demo-record", type=Path, default=Path(sources.DEMO_RECORD), help="make_demo's record")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    metrics = {}
    for stem in SOURCES:
        path = args.metrics / f"{stem}.json"
        if path.is_file():
            metrics[stem] = json.loads(path.read_text())
        else:
            log.warning("%s is missing: its table cells say so", path)
    datasets = load_section(args.params, "prepare", PrepareParams).datasets
    generated = sources.read_generated(args.sources, args.demo_record, list(datasets))
    demo = bool(generated)
    log.info("datasets whose metadata make_demo wrote: %s", ", ".join(generated) or "none")
    ctx = ReportContext(corpus_words(demo), load_settings(args.params), demo)
    details_file = args.metrics / DETAILS
    inputs = Inputs(
        metrics=metrics,
        details=json.loads(details_file.read_text()) if details_file.is_file() else {},
        curves={model: read_curve(args.metrics / f"pretrain_{stage}_live" / CURVE, "geometric_mean")
                for stage, model in PRETRAIN_CURVES},  # fmt: skip
        paper=PAPER,
    )
    drawn = draw_all(inputs)
    with atomic_path(args.figures) as tmp:
        tmp.mkdir()
        for spec, png, _ in drawn:
            (tmp / f"{spec.name}.png").write_bytes(png)
    for spec, _, rows in drawn:
        write_json(args.plots / f"{spec.name}.json", rows)
    where = Path(os.path.relpath(args.figures, args.out.parent))
    embedded = [(spec.caption + figure_coverage(metrics, spec.name), (where / f"{spec.name}.png").as_posix())
                for spec, _, _ in drawn]  # fmt: skip
    with atomic_path(args.out) as tmp:
        tmp.write_text(render(metrics, ctx, embedded))
    for claim in claims(metrics, ctx.tasks):
        log.info("%s: %s (%s)", claim["claim"], claim["status"], claim["evidence"])


if __name__ == "__main__":
    run_main(main)
