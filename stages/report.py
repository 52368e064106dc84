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
from blat_core.data.prepare import PrepareParams
from blat_core.data.synthesis import SynthesizeParams
from blat_core.eval.claims import claims
from blat_core.eval.deviations import Settings
from blat_core.eval.report import ReportContext, render
from blat_core.eval.schema import results
from blat_core.eval.tasks import TASKS
from blat_core.models.audio.encoder import AudioEncoderParams
from blat_core.models.text.encoder import TextEncoderParams
from blat_core.params import from_dict, load_params_file, load_section
from blat_core.runtime import run_main, setup_logging
from blat_core.train.captioner import CaptionerParams
from blat_core.train.pretrain import PretrainParams

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


def settings(params_file: Path) -> Settings:
    """The params sections the report's deviations and empty-cell reasons are computed from."""
    tasks = load_params_file(params_file).get("evaluate", {}).get("tasks", {})
    prepare = load_section(params_file, "prepare", PrepareParams)
    return Settings(
        pretrain=load_section(params_file, "pretrain", PretrainParams),
        synthesize=load_section(params_file, "synthesize", SynthesizeParams),
        captioner=load_section(params_file, "captioner", CaptionerParams),
        audio_encoder=load_section(params_file, "audio_encoder", AudioEncoderParams),
        text_encoder=load_section(params_file, "text_encoder", TextEncoderParams),
        sample_rate=prepare.sample_rate,
        tasks={name: from_dict(TASKS[name].params, data, f"evaluate.tasks.{name}") for name, data in tasks.items()},
    )


def corpus_words(params_file: Path) -> str:
    demo = "data/demo" in json.dumps(load_params_file(params_file).get("prepare", {}))
    return "the generated demo corpus (`make_demo`)" if demo else "the datasets configured under prepare.datasets"


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
    ctx = ReportContext(corpus_words(args.params), settings(args.params))
    with atomic_path(args.out) as tmp:
        tmp.write_text(render(metrics, ctx))
    write_json(args.recall_plot, recall_points(metrics))
    for claim in claims(metrics, ctx.tasks):
        log.info("%s: %s (%s)", claim["claim"], claim["status"], claim["evidence"])


if __name__ == "__main__":
    run_main(main)
