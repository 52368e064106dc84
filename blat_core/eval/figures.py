"""The report's figures, from the same metrics its tables read (matplotlib, Agg, no pyplot state).

Each figure is also written as the flat rows it was drawn from (`metrics/plots/<name>.json`), which
dvc.yaml declares as plots, so `dvc plots show` and `dvc plots diff <exp>` compare experiments with the
same numbers. A figure whose metrics are missing is still drawn, saying what it waits for.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from blat_core.eval.cells import PRIMARY, REALONLY, STAGE1, STAGE2, TABLE5_SETS
from blat_core.eval.schema import result, synthetic_captions

PAPER_STYLE = {"color": "white", "edgecolor": "black", "hatch": "///"}
MODELS = ((STAGE1, "stage 1, synthetic only"), (STAGE2, "stage 2"), (REALONLY, "real-only"))
TARGETS = (("audiocaps", "AudioCaps"), ("clotho", "Clotho"))
TASKS = (("zeroshot", "zero-shot"), ("linear_probe", "linear probe"), ("finetune", "fine-tune"))
CAPTION_METRICS = (("bleu_4", "BLEU-4"), ("rouge_l", "ROUGE-L"), ("meteor", "METEOR"), ("cider", "CIDEr"),
                   ("spice", "SPICE"), ("spider", "SPIDEr"), ("fense", "FENSE"))  # fmt: skip


@dataclass
class Drawn:
    """One figure: its file name stem, caption for the report, and the rows behind it."""

    name: str
    caption: str
    rows: list[dict]


def _value(entry, key: str) -> float | None:
    """A metric in percent: a number, or the mean of {mean, std, seeds}; None when absent."""
    value = entry.get(key) if entry else None
    if isinstance(value, dict):
        value = value.get("mean")
    return None if value is None else 100.0 * float(value)


def _bars(ax, groups: list[str], series: list[tuple[str, list, dict]]) -> None:
    """Grouped bars: one group per label in `groups`, one bar per series (label, values, style)."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (label, values, style) in enumerate(series):
        heights = [np.nan if v is None else v for v in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=label, **style)
    ax.set_xticks(x, groups)
    ax.grid(axis="y", alpha=0.3)


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no data yet: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def retrieval(metrics: dict, paper: dict, figure: Figure) -> list[dict]:
    rows = []
    axes = figure.subplots(2, 2, sharey=True)
    for r, (dataset, title) in enumerate(TARGETS):
        for c, direction in enumerate(("text_to_audio", "audio_to_text")):
            ax, series = axes[r][c], []
            for model, label in MODELS:
                entry = result(metrics, "retrieval", dataset, model)
                values = [_value(entry[direction], f"R@{k}") if entry else None for k in (1, 5, 10)]
                series.append((f"{label} (ours)", values, {}))
                rows += [{"dataset": dataset, "direction": direction, "model": model, "k": k, "recall": v}
                         for k, v in zip((1, 5, 10), values, strict=True) if v is not None]  # fmt: skip
            printed = paper["table2_zeroshot"][dataset]
            r1, r10 = printed[2:] if direction == "text_to_audio" else printed[:2]
            series.append(("BLAT synthetic only (paper)", [r1, None, r10], PAPER_STYLE))
            _bars(ax, ["R@1", "R@5", "R@10"], series)
            ax.set_title(f"{title}, {'text → audio' if direction == 'text_to_audio' else 'audio → text'}")
    axes[0][0].set_ylabel("recall (%)")
    axes[1][0].set_ylabel("recall (%)")
    axes[0][0].legend(fontsize=7)
    return rows


def classification(metrics: dict, paper: dict, figure: Figure) -> list[dict]:
    rows = []
    axes = figure.subplots(1, 3, sharey=True)
    papers = {"zeroshot": paper["table5_zeroshot"], "linear_probe": paper["table5_probe"]["blat"],
              "finetune": paper["table5_finetune"]["blat"]}  # fmt: skip
    for ax, (task, title) in zip(axes, TASKS, strict=True):
        series = []
        models = MODELS if task == "zeroshot" else ((STAGE2, "BLAT stage 2"), ("tagger", "tagger (PANNs)"))
        for model, label in models:
            values = [_value(result(metrics, task, d, model), PRIMARY[d]) for d in TABLE5_SETS]
            series.append((f"{label} (ours)", values, {}))
            rows += [{"task": task, "dataset": d, "model": model, "metric": PRIMARY[d], "value": v}
                     for d, v in zip(TABLE5_SETS, values, strict=True) if v is not None]  # fmt: skip
        series.append(("BLAT (paper)", [papers[task].get(d) for d in TABLE5_SETS], PAPER_STYLE))
        _bars(ax, [f"{d}\n{PRIMARY[d]}" for d in TABLE5_SETS], series)
        ax.set_title(title)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("accuracy or mAP (%)")
    return rows


def captioning(metrics: dict, paper: dict, figure: Figure) -> list[dict]:
    """Table 3 (synthetic caption quality) and Table 4 (captioning on frozen features) as grouped bars."""
    rows = []
    left, right = figure.subplots(1, 2, width_ratios=[1, 1.4])
    sources = synthetic_captions(metrics)
    t3 = [m for m in CAPTION_METRICS if m[0] != "spider"]
    series = []
    for i, (name, label) in enumerate((("without_tag", "without tags"), ("with_tag", "with tags"),
                                       ("human", "human"))):  # fmt: skip
        values = [_value(sources.get(name), key) for key, _ in t3]
        series.append((f"{label} (ours)", values, {"color": f"C{i}"}))
        series.append((f"{label} (paper)", list(paper["table3"][name]), {**PAPER_STYLE, "edgecolor": f"C{i}"}))
        rows += [{"table": "3", "source": name, "dataset": "audiocaps", "metric": key, "value": v}
                 for (key, _), v in zip(t3, values, strict=True) if v is not None]  # fmt: skip
    _bars(left, [label for _, label in t3], series)
    left.set_title("Table 3: synthetic captions (AudioCaps test)")
    left.tick_params(axis="x", labelsize=7)
    left.legend(fontsize=6, ncols=2)
    groups, series = [], []
    for model, label in (("tagger", "tagger / PANNs"), (STAGE2, "BLAT stage 2")):
        values = []
        for dataset, _ in TARGETS:
            entry = result(metrics, "captioning", dataset, model)
            for key, _ in CAPTION_METRICS:
                values.append(_value(entry, key))
                if values[-1] is not None:
                    rows.append({"table": "4", "source": model, "dataset": dataset, "metric": key,
                                 "value": values[-1]})  # fmt: skip
        series.append((f"{label} (ours)", values, {}))
    for name, label in (("panns", "PANNs"), ("blat", "BLAT")):
        printed = []
        for dataset, _ in TARGETS:
            spider, fense = paper["table4"][dataset][name]
            printed += [None] * 5 + [spider, fense]
        series.append((f"{label} (paper)", printed, PAPER_STYLE if name == "blat" else {**PAPER_STYLE, "hatch": "..."}))
    groups = [f"{title}\n{metric}" for _, title in TARGETS for _, metric in CAPTION_METRICS]
    _bars(right, groups, series)
    right.set_title("Table 4: captioning on frozen audio features")
    right.tick_params(axis="x", labelsize=6)
    right.legend(fontsize=6)
    left.set_ylabel("score (%)")
    return rows


def read_curve(path: Path, column: str) -> list[tuple[int, float]]:
    """A DVCLive TSV's (step, value) pairs; [] when it does not exist."""
    if not path.is_file():
        return []
    with path.open() as handle:
        return [(int(r["step"]), float(r[column])) for r in csv.DictReader(handle, delimiter="\t")]


def pretrain_curves(curves: dict[str, list[tuple[int, float]]], figure: Figure) -> list[dict]:
    ax = figure.subplots()
    rows = []
    for model, label in MODELS:
        points = curves.get(model, [])
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, [100 * v for v in values], marker="o", markersize=3, label=label)
            rows += [{"model": model, "step": s, "geometric_mean": v} for s, v in points]
    if not rows:
        _empty(ax, "the pre-training stages' validation curves")
        return rows
    ax.set_xlabel("training step (each stage counts from its own start)")
    ax.set_ylabel("validation retrieval, geometric mean of R@1/5/10 (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    return rows


def per_class(details: dict, figure: Figure, dataset: str = "esc50") -> list[dict]:
    """Zero-shot accuracy per class, worst first, with the class each is most often taken for."""
    by_model = details.get("zeroshot", {}).get(dataset, {})
    ax = figure.subplots()
    if not by_model:
        _empty(ax, f"zero-shot per-class results on {dataset}")
        return []
    reference = STAGE1 if STAGE1 in by_model else next(iter(by_model))
    ref = by_model[reference]["per_class"]
    classes = sorted(ref, key=lambda c: (ref[c]["accuracy"], c))
    y = np.arange(len(classes))
    models = [(m, label) for m, label in MODELS if m in by_model]
    height = 0.8 / len(models)
    rows = []
    for i, (model, label) in enumerate(models):
        table = by_model[model]["per_class"]
        values = [100 * table[c]["accuracy"] if c in table else np.nan for c in classes]
        ax.barh(y + (i - (len(models) - 1) / 2) * height, values, height, label=label)
        rows += [{"model": model, "class": c, "accuracy": 100 * table[c]["accuracy"],
                  "confused_with": table[c]["confused_with"]} for c in classes if c in table]  # fmt: skip
    ax.set_yticks(y, [f"{c} → {ref[c]['confused_with']}" if ref[c]["confused_with"] else c for c in classes],
                  fontsize=7)  # fmt: skip
    ax.invert_yaxis()  # worst first, from the top
    ax.set_xlabel(f"zero-shot accuracy (%); label: the class → what {reference} takes it for most often")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7)
    return rows


@dataclass(frozen=True)
class Spec:
    name: str
    caption: str
    size: tuple[float, float]
    draw: Callable[..., list[dict]]
    value: str = "value"  # the rows' number, the x of dvc.yaml's bar plot; every other field makes the label


FIGURES = (
    Spec("retrieval", "Table 2 as bars: zero-shot retrieval recall of each model beside the paper's synthetic-only "
         "BLAT (the paper prints R@1 and R@10).", (10, 7), lambda i: retrieval(i.metrics, i.paper, i.figure),
         "recall"),
    Spec("classification", "Table 5 as bars: zero-shot, linear-probe and fine-tuned classification, ours beside "
         "the paper's BLAT (mean over seeds for probe and fine-tune).", (14, 4.5),
         lambda i: classification(i.metrics, i.paper, i.figure)),
    Spec("captioning", "Tables 3 and 4 as grouped bars; hatched bars are the paper's; metrics that need local "
         "models (SPICE, SPIDEr, FENSE) are empty when those are not configured.", (15, 5),
         lambda i: captioning(i.metrics, i.paper, i.figure)),
    Spec("pretrain_curves", "Validation retrieval during pre-training: stage 1 (synthetic captions), stage 2 "
         "(continues from stage 1 on real captions) and real-only, on one axis.", (8, 4.5),
         lambda i: pretrain_curves(i.curves, i.figure), "geometric_mean"),
    Spec("esc50_per_class", "ESC-50 zero-shot accuracy per class, worst first, and the class each is most often "
         "mistaken for.", (9, 7), lambda i: per_class(i.details, i.figure), "accuracy"),
)  # fmt: skip


@dataclass
class Inputs:
    metrics: dict
    details: dict
    curves: dict
    paper: dict
    figure: Figure | None = None


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return buffer.getvalue()


def labelled(rows: list[dict], value: str) -> list[dict]:
    """Each row with a `label`: its other fields joined ("esc50 · zeroshot · blat_stage1"), for a bar plot."""
    def text(key, v):
        return f"R@{v}" if key == "k" else str(v)

    return [{**row, "label": " · ".join(text(k, v) for k, v in row.items() if k != value and v != "")}
            for row in rows]  # fmt: skip


def draw_all(inputs: Inputs) -> list[tuple[Spec, bytes, list[dict]]]:
    """Every figure as (spec, PNG bytes, the labelled rows it was drawn from)."""
    out = []
    for spec in FIGURES:
        figure = Figure(figsize=spec.size, layout="constrained")
        inputs.figure = figure
        rows = spec.draw(inputs)
        out.append((spec, png_bytes(figure), labelled(rows, spec.value)))
    return out
