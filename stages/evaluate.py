"""Stage `evaluate@<task>`: one evaluation task (see blat_core.eval.tasks) with its own params
section `evaluate.tasks.<task>` -> metrics/evaluate_<task>.json (namespaced keys for `dvc metrics diff`)
and metrics/details/evaluate_<task>.json (per-class results, kept out of the metrics; {} for most tasks).

Beside the numbers it writes the receipts (blat_core.eval.receipts): `<task>_coverage` (per test set: clips
listed, prepared, scored, and why not) and `<task>_protocol` in the metrics, and the ids it scored, one sorted
list per dataset, under metrics/ids/<task>/. Every model under data/models/external/ (the `import_external`
stage: `evaluate.external_models`) is scored beside the task's own models.

DVC runs: python stages/evaluate.py <task> --models data/models --prepared data/prepared
          --features data/features --metrics metrics/evaluate_<task>.json
          --details metrics/details/evaluate_<task>.json --ids metrics/ids/<task> --scratch scratch/evaluate
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core import compute
from blat_core.atomic import write_json
from blat_core.eval import receipts
from blat_core.eval.schema import split_details
from blat_core.eval.tasks import TASKS, check_task, receipts_of, run_task, with_external
from blat_core.params import ParamsError, from_dict, load_params_file
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("evaluate")


def load_task(params_file: Path, name: str):
    tasks = load_params_file(params_file).get("evaluate", {}).get("tasks", {})
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ParamsError(f"unknown evaluate.tasks {unknown}; valid tasks: {sorted(TASKS)}")
    if name not in tasks:
        raise ParamsError(f"evaluate.tasks.{name} is missing from {params_file}")
    return from_dict(TASKS[name].params, tasks[name], f"evaluate.tasks.{name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--models", type=Path, required=True, help="folder holding the model folders")
    parser.add_argument("--prepared", type=Path, required=True, help="folder holding the prepared datasets")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--details", type=Path, help="where per-class results go (default: dropped)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path("scratch"),
        help="git-ignored folder for the resume checkpoints of long tasks (captioning)",
    )
    parser.add_argument("--features", type=Path, help="folder of the features@<dataset> outputs (the tagger's frames, "
                        "reused by the captioning task instead of extracting them again)")  # fmt: skip
    parser.add_argument("--ids", type=Path, help="folder for the pinned lists of the ids scored (default: none)")
    parser.add_argument("--id-lists", type=Path, help="the tracked folder that `id_lists` entries must lie in")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    task = with_external(load_task(args.params, args.task), args.task, args.models)
    check_task(args.task, task, args.models, args.prepared, args.id_lists)
    compute.seed_everything(0)
    device = compute.pick_device()
    metrics = run_task(args.task, task, args.models, args.prepared, device, args.scratch, args.features)
    metrics, scored = receipts.take_scored(metrics)
    metrics, details = split_details(metrics)
    lists = receipts.write_id_lists(args.ids, scored.get(args.task, {})) if args.ids is not None else {}
    metrics |= receipts_of(args.task, task, args.prepared, scored.get(args.task, {}), lists, device)
    write_json(args.metrics, metrics)
    if args.details is not None:
        write_json(args.details, details)


if __name__ == "__main__":
    run_main(main)
