"""Stage `report`: metrics/report.md — the paper's Tables 2–5 with ours beside the paper's, and the
miniature-claims check — plus metrics/plots/retrieval_recall.json (R@K per model, for `dvc plots`).

DVC runs: python stages/report.py --metrics metrics --out metrics/report.md
          --recall-plot metrics/plots/retrieval_recall.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from blat_core.atomic import atomic_path, write_json
from blat_core.eval.report import claims, render
from blat_core.eval.schema import results
from blat_core.params import load_params_file
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("report")
SOURCES = ("captioning_synthetic", "pretrain_stage1", "pretrain_stage2", "pretrain_realonly",
           "evaluate_retrieval", "evaluate_zeroshot", "evaluate_linear_probe", "evaluate_finetune",
           "evaluate_retrieval_finetune", "evaluate_captioning")  # fmt: skip


def recall_points(metrics: dict) -> list[dict]:
    points = []
    for dataset, models in results(metrics, "retrieval").items():
        for model, result in models.items():
            for direction in ("audio_to_text", "text_to_audio"):
                for k in (1, 5, 10):
                    points.append({"series": f"{model} {dataset} {direction}", "k": k,
                                   "recall": result[direction][f"R@{k}"]})  # fmt: skip
    return points


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=Path, required=True, help="folder of the stages' metrics JSON files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recall-plot", type=Path, required=True)
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
    demo = "data/demo" in json.dumps(load_params_file(args.params).get("prepare", {}))
    corpus = "the generated demo corpus (`make_demo`)" if demo else "the datasets configured under prepare.datasets"
    with atomic_path(args.out) as tmp:
        tmp.write_text(render(metrics, corpus))
    write_json(args.recall_plot, recall_points(metrics))
    for claim in claims(metrics):
        log.info("%s: %s (%s)", claim["claim"], claim["status"], claim["evidence"])


if __name__ == "__main__":
    run_main(main)
