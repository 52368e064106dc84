"""The shape every evaluation task writes, in one place: metrics/evaluate_<task>.json holds
`{task: {dataset: {model: entry}}}`. The task registry writes through it and the report reads through
it; neither spells the nesting out."""

from __future__ import annotations

SYNTHETIC_CAPTIONS = "captioning_synthetic"  # Table 3's metrics: {it: {without_tag | with_tag | human: scores}}
DATASETS_FIELD = {"retrieval_finetune": "targets"}  # the params field naming a task's datasets (else "datasets")


def split_details(metrics: dict) -> tuple[dict, dict]:
    """Move each entry's `details` (per-class results: many numbers that `dvc metrics diff` should not list)
    out of `{task: {dataset: {model: entry}}}`: (metrics without them, {task: {dataset: {model: details}}})."""
    lean, details = {}, {}
    for task, datasets in metrics.items():
        for dataset, models in datasets.items():
            for model, entry in models.items():
                entry = dict(entry)
                if "details" in entry:
                    details.setdefault(task, {}).setdefault(dataset, {})[model] = entry.pop("details")
                lean.setdefault(task, {}).setdefault(dataset, {})[model] = entry
    return lean, details


def metrics_name(task: str) -> str:
    """The metrics file stem of an evaluation task: metrics/<stem>.json."""
    return f"evaluate_{task}"


def results(metrics: dict[str, dict], task: str) -> dict[str, dict[str, dict]]:
    """{dataset: {model: entry}} of `task`, from {metrics file stem: its content}; {} when it has not run."""
    return metrics.get(metrics_name(task), {}).get(task, {})


def result(metrics: dict[str, dict], task: str, dataset: str, model: str) -> dict | None:
    """The entry `task` wrote for (dataset, model); None when it has not run or did not score that pair."""
    return results(metrics, task).get(dataset, {}).get(model)


def synthetic_captions(metrics: dict[str, dict]) -> dict[str, dict]:
    """Table 3's scores per caption source."""
    return metrics.get(SYNTHETIC_CAPTIONS, {}).get(SYNTHETIC_CAPTIONS, {})


def datasets_field(task: str) -> str:
    return DATASETS_FIELD.get(task, "datasets")
