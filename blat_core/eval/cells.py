"""How the report writes a cell: our numbers as percentages, the paper's as printed, and for an empty
cell the reason it is empty — excluded by params (naming the key), a metric whose local model is
missing, not in the paper, or "not run yet" (only when the stage that fills it has not run)."""

from __future__ import annotations

from typing import Any

from blat_core.data.datasets import recipe
from blat_core.eval.schema import datasets_field, metrics_name
from blat_core.models.towers import EXTERNAL_PREFIX

TABLE5_SETS = ("esc50", "us8k", "vggsound", "fsd50k", "audioset")  # Table 5's columns, in the paper's order
PRIMARY = {name: recipe(name).classification.primary_metric for name in TABLE5_SETS}  # each column's metric
# The model folders the report's rows name (pipeline outputs under data/models) and the from-scratch start.
STAGE1, STAGE2, REALONLY, SCRATCH = "blat_stage1", "blat_stage2", "blat_realonly", "scratch"
NOT_RUN = "not run yet"
NOT_IN_PAPER = "not in the paper"
UNAVAILABLE = {  # metric -> what it needs (the metrics file holds the long reason)
    "spice": "needs CoreNLP (`corenlp_dir`)",
    "spider": "needs CoreNLP (`corenlp_dir`)",
    "fense": "needs the FENSE models (`fense_*`)",
}


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def paper(value: float | None) -> str:
    return NOT_IN_PAPER if value is None else f"{value:.1f}"


def mean_std(entry: dict) -> str:
    """{mean, std, seeds} as "m ± s" in percent."""
    return f"{pct(entry['mean'])} ± {pct(entry['std'])}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return [row(header), row(["---"] * len(header)), *(row(r) for r in rows), ""]


class Reasons:
    """Why a cell of ours is empty, from the params in force (`tasks`: evaluate.tasks.<name> -> its
    params, absent when the task is not configured) and which metrics files exist (`ran`)."""

    def __init__(self, tasks: dict[str, Any], ran: set[str]):
        self.tasks, self.ran = tasks, ran

    def missing(self, task: str, dataset: str, model: str) -> str:
        spec = self.tasks.get(task)
        field = datasets_field(task)
        if spec is None:
            return f"excluded by params (no `evaluate.tasks.{task}`)"
        if dataset not in getattr(spec, field):
            return f"excluded by params (`evaluate.tasks.{task}.{field}`)"
        if model.startswith(EXTERNAL_PREFIX):
            if metrics_name(task) not in self.ran:
                return NOT_RUN
            return f"not scored (run `dvc repro import_external evaluate@{task}`)"
        if model not in spec.models:
            return f"excluded by params (`evaluate.tasks.{task}.models`)"
        if metrics_name(task) not in self.ran:
            return NOT_RUN
        return f"no result (see the evaluate@{task} log)"

    def metric(self, scores: dict, key: str) -> str:
        """One caption metric of ours, or why it is missing."""
        value = scores.get(key)
        if value is not None:
            return pct(value)
        return UNAVAILABLE.get(key, "unavailable here (see the metrics file)")
