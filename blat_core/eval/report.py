"""The paper's tables with our numbers beside the paper's (SPEC §3), the miniature claims, and the
deviations from the paper.

Every number of ours comes from a metrics file (read through `eval.schema`); an empty cell says why
(`eval.cells.Reasons`). Rows are named by what the model saw: Table 2's upper half is the model
pre-trained on synthetic data only (stage 1), scored without training on the target; models trained on
the targets' training captions (stage 2, real-only) are listed apart, as not zero-shot.
"""

from __future__ import annotations

from dataclasses import dataclass

from blat_core.eval.cells import (
    NOT_IN_PAPER,
    NOT_RUN,
    PRIMARY,
    REALONLY,
    SCRATCH,
    STAGE2,
    Reasons,
    mean_std,
    paper,
    pct,
    table,
)
from blat_core.eval.cells import STAGE1 as SYNTHETIC_ONLY
from blat_core.eval.cells import TABLE5_SETS as CLASSIFICATION
from blat_core.eval.claims import CLAIM_RULE, claims
from blat_core.eval.deviations import Settings, deviations
from blat_core.eval.receipts import coverage_key, coverage_line, protocol_key
from blat_core.eval.schema import metrics_name, result, results, synthetic_captions
from blat_core.models.towers import EXTERNAL_PREFIX

# SPEC §3: the paper's headline numbers (percent).
PAPER = {
    "table2_zeroshot": {"audiocaps": (32.6, 76.7, 23.5, 68.4), "clotho": (7.6, 31.5, 5.6, 23.8)},
    "table2_finetuned": {"audiocaps": (47.5, 87.6, 38.2, 85.1), "clotho": (17.9, 50.9, 13.7, 48.9)},
    "table2_scratch": {"audiocaps": (40.4, 85.7, 33.3, 82.4), "clotho": (13.9, 48.2, 12.3, 46.1)},
    "table3": {
        "without_tag": (24.1, 47.0, 23.1, 71.2, 19.2, 60.1),
        "with_tag": (26.4, 49.0, 24.5, 80.4, 21.0, 62.5),
        "human": (29.0, 49.5, 28.8, 90.8, 28.8, 68.0),
    },
    "table4": {
        "audiocaps": {"panns": (45.2, 60.6), "blat": (45.9, 61.5)},
        "clotho": {"panns": (25.7, 43.8), "blat": (27.1, 45.8)},
    },  # fmt: skip
    "table5_zeroshot": {
        "esc50": 80.6,
        "us8k": 77.3,
        "vggsound": 14.9,
        "vggsound_map": 13.5,
        "fsd50k": 31.3,
        "audioset": 10.5,
    },  # fmt: skip
    "table5_probe": {
        "blat": {"esc50": 94.8, "us8k": 85.7, "vggsound": 42.9, "fsd50k": 32.4, "audioset": 38.7},
        "panns": {"esc50": 89.9, "us8k": 82.6, "vggsound": 41.4, "fsd50k": 29.7},
    },  # fmt: skip
    "table5_finetune": {
        "blat": {"esc50": 95.8, "us8k": 89.0, "vggsound": 54.8, "fsd50k": 60.3, "audioset": 44.0},
        "panns": {"esc50": 95.4, "us8k": 87.4, "vggsound": 55.3, "fsd50k": 57.6},
    },  # fmt: skip
}
TARGETS = (("audiocaps", "AudioCaps"), ("clotho", "Clotho"))
TITLES = {"audiocaps": "AudioCaps", "clotho": "Clotho", "macs": "MACS", "esc50": "ESC-50", "us8k": "US8K",
          "vggsound": "VGGSound", "fsd50k": "FSD50K", "audioset": "AudioSet"}  # fmt: skip
TABLE_TASKS = {2: ("retrieval", "retrieval_finetune"), 4: ("captioning",), 5: ("zeroshot", "linear_probe", "finetune")}
NOT_CONFIGURED = "not configured (`evaluate.external_models`)"
AUTHORS = "authors' released BLAT{}, scored by this pipeline"  # + " `<name>`" per imported checkpoint
TIES = ("Ranks break ties against the true item (an item scored exactly as high as the true one ranks ahead "
        "of it); accuracy gives a tie to the first class.")  # fmt: skip


def corpus_words(demo: bool) -> str:
    """The corpus a run used, in the words the report opens with."""
    return "the generated demo corpus (`make_demo`)" if demo else "the datasets configured under prepare.datasets"


def external_rows(ctx_external: list[str], width: int, cells) -> list[list[str]]:
    """One row per imported checkpoint (`cells(model key)` fills it), or one row saying none is configured."""
    if not ctx_external:
        return [[AUTHORS.format(""), *[NOT_CONFIGURED] * width]]
    return [[AUTHORS.format(f" `{name}`"), *cells(EXTERNAL_PREFIX + name)] for name in ctx_external]


def coverage_lines(metrics: dict, tasks: tuple[str, ...]) -> list[str]:
    """Under a table: per task and test set, the clips scored of those the metadata lists, and the pinned list."""
    lines = []
    for task in tasks:
        coverage = metrics.get(metrics_name(task), {}).get(coverage_key(task))
        if coverage is None:
            state = NOT_RUN if metrics_name(task) not in metrics else "no coverage recorded"
            lines.append(f"- evaluate@{task}: {state}")
            continue
        for dataset, entry in coverage.items():
            parts = [coverage_line(TITLES.get(dataset, dataset), split, counts)
                     for split, counts in entry["splits"].items()]  # fmt: skip
            ids = entry.get("ids") or {}
            pinned = f" — ids `{ids['file']}` (sha256 {ids['sha256'][:12]})" if ids else ""
            restricted = ", restricted to an id list" if entry.get("restricted") else ""
            lines.append(f"- evaluate@{task}: {' · '.join(parts)}{restricted}{pinned}")
    return ["Coverage (clips scored of those the metadata lists):", "", *lines, ""]


FIGURE_TASKS = {"retrieval": ("retrieval",), "classification": ("zeroshot", "linear_probe", "finetune"),
                "captioning": ("captioning",), "esc50_per_class": ("zeroshot",)}  # fmt: skip


def figure_coverage(metrics: dict, figure: str) -> str:
    """A figure caption's coverage sentence: clips scored of those listed, per test set and task."""
    parts = []
    for task in FIGURE_TASKS.get(figure, ()):
        coverage = metrics.get(metrics_name(task), {}).get(coverage_key(task), {})
        sets = [f"{TITLES.get(d, d)} {split} {c['scored']:,}/{c['listed']:,}" for d, entry in coverage.items()
                for split, c in entry["splits"].items() if figure != "esc50_per_class" or d == "esc50"]  # fmt: skip
        if sets:
            parts.append(f"evaluate@{task}: {', '.join(sets)}")
    return f" Clips scored of those listed — {'; '.join(parts)}." if parts else ""


def protocol_words(task: str, protocol: dict) -> str:
    """The protocol facts of one task in a sentence."""
    rates = sorted(set(protocol.get("sample_rate", {}).values()))
    run = protocol.get("runtime", {})
    words = [f"{'/'.join(map(str, rates)) or '?'} Hz", protocol.get("test_audio", "")]
    if "prompt" in protocol:
        words.append(f"prompt {protocol['prompt']!r}")
    for key, label in (("captions_per_clip", "captions per clip"), ("references_per_clip", "references per clip")):
        if protocol.get(key):
            words.append(label + " " + ", ".join(f"{d} {c['min']}–{c['max']}" for d, c in protocol[key].items()))
    if "number_of_seeds" in protocol:
        words.append(f"{protocol['number_of_seeds']} seeds")
    if protocol.get("steps"):
        words.append(f"{protocol['steps']} steps, training crops {protocol.get('train_crop_seconds')} s")
    if protocol.get("evaluation_sets"):
        words.append("folds/splits evaluated " + ", ".join(f"{d} {n}" for d, n in protocol["evaluation_sets"].items()))
    if protocol.get("id_lists"):
        words.append("id lists " + ", ".join(f"{d}: `{p}`" for d, p in protocol["id_lists"].items()))
    if "tie_rule" in protocol:
        words.append(f"ties: {protocol['tie_rule']}")
    words.append(f"{run.get('device', '?')}, {run.get('runtime', '?')} kernels ({run.get('cpu_capability', '?')}, "
                 f"{run.get('threads', '?')} threads, torch {run.get('torch', '?')})")
    return f"evaluate@{task}: " + "; ".join(w for w in words if w)


def protocol_lines(metrics: dict, tasks: tuple[str, ...]) -> list[str]:
    found = [(t, metrics[metrics_name(t)][protocol_key(t)]) for t in tasks
             if protocol_key(t) in metrics.get(metrics_name(t), {})]  # fmt: skip
    if not found:
        return []
    return ["Protocol:", "", *(f"- {protocol_words(t, p)}" for t, p in found), ""]


def unalike(metrics: dict) -> list[str]:
    """A warning when the tasks of this report were not scored alike (sample rate, kernels, threads, torch)."""
    seen = {}
    for task in (t for group in TABLE_TASKS.values() for t in group):
        protocol = metrics.get(metrics_name(task), {}).get(protocol_key(task))
        if protocol:
            run = protocol.get("runtime", {})
            rates = tuple(sorted(set(protocol.get("sample_rate", {}).values())))
            seen[task] = (rates, *(run.get(k) for k in ("runtime", "cpu_capability", "threads", "torch", "device")))
    if len(set(seen.values())) <= 1:
        return []
    listing = "; ".join(f"{t}: {v}" for t, v in seen.items())
    return [f"**Not scored alike**: the tasks differ in (sample rates, kernels, CPU capability, threads, torch, "
            f"device): {listing}. Compare their numbers with care.", ""]  # fmt: skip


@dataclass
class ReportContext:
    """What the report needs besides the metrics: the corpus in words and the params in force."""

    corpus: str
    settings: Settings
    demo: bool = True  # the run used the generated demo corpus (not real data)

    @property
    def tasks(self) -> dict:
        return self.settings.tasks

    @property
    def external(self) -> list[str]:
        return list(getattr(self.settings, "external", []))


def _recalls(entry: dict | None, reason: str) -> list[str]:
    """R@1 and R@10 of both directions (4 cells) of a retrieval entry, or the reason four times."""
    if entry is None:
        return [reason] * 4
    return [pct(entry[d][k]) for d in ("audio_to_text", "text_to_audio") for k in ("R@1", "R@10")]


def _tuned(entry: dict | None, reason: str) -> list[str]:
    """Fine-tuned recalls as mean ± std over seeds, saying when the kept weights are the untouched start."""
    if entry is None:
        return [reason] * 4
    runs = entry.get("runs", [])
    kept = entry.get("start_kept", 0)
    cells = [mean_std(entry[d][k]) for d in ("audio_to_text", "text_to_audio") for k in ("R@1", "R@10")]
    if runs and kept == len(runs):
        return [f"{c} — start kept (not fine-tuned)" for c in cells]
    if kept:
        return [f"{c} (start kept by {kept}/{len(runs)} seeds)" for c in cells]
    return cells


def table2(metrics: dict, ctx: ReportContext) -> list[str]:
    why = Reasons(ctx.tasks, set(metrics))
    header = ["model", "AudioCaps A→T R@1", "R@10", "T→A R@1", "R@10", "Clotho A→T R@1", "R@10", "T→A R@1", "R@10"]
    def zero_shot(model: str) -> list[str]:
        return [c for d, _ in TARGETS for c in _recalls(result(metrics, "retrieval", d, model),
                                                         why.missing("retrieval", d, model))]  # fmt: skip

    def printed(key: str) -> list[str]:
        return [paper(v) for d, _ in TARGETS for v in PAPER[key][d]]

    rows = [["**zero-shot: pre-trained on synthetic data only**", *[""] * 8]]
    rows.append(["BLAT stage 1, synthetic captions only (ours)", *zero_shot(SYNTHETIC_ONLY)])
    rows.append(["BLAT, synthetic data only (paper)", *printed("table2_zeroshot")])
    rows += external_rows(ctx.external, 8, zero_shot)
    tuned = ctx.tasks.get("retrieval_finetune")
    start = next((m for m in (tuned.models if tuned else []) if m != SCRATCH), SYNTHETIC_ONLY)
    schedule = f", {tuned.steps} steps × {len(tuned.seeds)} seeds" if tuned else ""
    rows.append(["**trained on the target's training captions**", *[""] * 8])
    for model, label, key in ((start, f"BLAT fine-tuned from {start} (ours{schedule})", "table2_finetuned"),
                              (SCRATCH, f"from scratch (ours{schedule})", "table2_scratch")):  # fmt: skip
        cells = [c for d, _ in TARGETS for c in _tuned(result(metrics, "retrieval_finetune", d, model),
                                                       why.missing("retrieval_finetune", d, model))]  # fmt: skip
        rows.append([label, *cells])
        rows.append([label.split(" (ours")[0].replace(f" from {start}", "") + " (paper)", *printed(key)])
    rows.append(["**pre-trained on AudioCaps + Clotho + MACS training captions: not zero-shot**", *[""] * 8])
    for model, label in ((STAGE2, "BLAT stage 2: stage 1, then the real captions (ours)"),
                         (REALONLY, "real-only: the real captions from the tagger (ours)")):  # fmt: skip
        rows.append([label, *zero_shot(model)])
    notes = ["Stage 2 and real-only have trained on AudioCaps train and Clotho development captions, so their "
             f"scores on those test sets are not zero-shot; the paper has no such rows. {TIES}", ""]  # fmt: skip
    return ["## Table 2 — text–audio retrieval (%)", "", *table(header, rows), *notes,
            *coverage_lines(metrics, TABLE_TASKS[2]), *protocol_lines(metrics, TABLE_TASKS[2])]  # fmt: skip


def table3(metrics: dict, ctx: ReportContext) -> list[str]:
    scores_by_source = synthetic_captions(metrics)
    why = Reasons(ctx.tasks, set(metrics))
    columns = ("bleu_4", "rouge_l", "meteor", "cider", "spice", "fense")
    header = ["captions (AudioCaps test)", "BLEU-4", "ROUGE-L", "METEOR", "CIDEr", "SPICE", "FENSE"]
    rows = []
    for name, label in (("without_tag", "synthetic, without tags"), ("with_tag", "synthetic, with tags"),
                        ("human", "human")):  # fmt: skip
        scores = scores_by_source.get(name)
        rows.append([f"{label} (ours)", *((why.metric(scores, c) if scores else "not run yet") for c in columns)])
        rows.append([f"{label} (paper)", *(paper(v) for v in PAPER["table3"][name])])
    return ["## Table 3 — quality of the synthetic captions (%)", "", *table(header, rows)]


def table4(metrics: dict, ctx: ReportContext) -> list[str]:
    why = Reasons(ctx.tasks, set(metrics))
    columns = ("bleu_4", "rouge_l", "meteor", "cider", "spider", "fense")
    header = ["captioner features", "dataset", "BLEU-4", "ROUGE-L", "METEOR", "CIDEr", "SPIDEr", "FENSE"]
    rows = []
    for name, label in (("tagger", "PANNs / tagger"), (STAGE2, "BLAT stage 2")):
        for dataset, title in TARGETS:
            scores = result(metrics, "captioning", dataset, name)
            cells = ([why.metric(scores, c) for c in columns] if scores
                     else [why.missing("captioning", dataset, name)] * len(columns))  # fmt: skip
            rows.append([f"{label} (ours)", title, *cells])
    def captioned(model: str, dataset: str) -> list[str]:
        scores = result(metrics, "captioning", dataset, model)
        return ([why.metric(scores, c) for c in columns] if scores
                else [why.missing("captioning", dataset, model)] * len(columns))  # fmt: skip

    for dataset, title in TARGETS:
        for row in external_rows(ctx.external, len(columns), lambda m, d=dataset: captioned(m, d)):
            rows.append([row[0], title, *row[1:]])
    for name, label in (("panns", "PANNs"), ("blat", "BLAT")):
        for dataset, title in TARGETS:
            spider, fense = PAPER["table4"][dataset][name]
            rows.append([f"{label} (paper)", title, *[NOT_IN_PAPER] * 4, paper(spider), paper(fense)])
    return ["## Table 4 — captioning on frozen audio features (%), captioner without tags", "",
            *table(header, rows), *coverage_lines(metrics, TABLE_TASKS[4]), *protocol_lines(metrics, TABLE_TASKS[4])]


def _classification_cell(task: str, metrics: dict, ctx: ReportContext, dataset: str, model: str) -> str:
    entry = result(metrics, task, dataset, model)
    if entry is None:
        return Reasons(ctx.tasks, set(metrics)).missing(task, dataset, model)
    metric = PRIMARY[dataset]
    if task == "zeroshot":
        cell = pct(entry[metric])
        return f"{cell} ({pct(entry['mAP'])})" if dataset == "vggsound" else cell
    cell = mean_std(entry[metric])
    spec = ctx.tasks[task]
    if task == "finetune":
        folds = f"{entry['sets']} fold{'s' if entry['sets'] > 1 else ''}" if entry.get("sets") else ""
        return f"{cell} ({folds} · {spec.steps} steps)"
    return cell


def table5(metrics: dict, ctx: ReportContext) -> list[str]:
    header = ["setting", "ESC-50 acc", "US8K acc", "VGGSound acc (mAP)", "FSD50K mAP", "AudioSet mAP"]
    rows = []
    zero_shot_rows = ((SYNTHETIC_ONLY, "zero-shot BLAT stage 1, synthetic only (ours)"),
                      (STAGE2, "zero-shot BLAT stage 2 (ours)"), (REALONLY, "zero-shot real-only (ours)"))
    for model, label in zero_shot_rows:
        rows.append([label, *(_classification_cell("zeroshot", metrics, ctx, d, model) for d in CLASSIFICATION)])
    z = PAPER["table5_zeroshot"]
    vggsound = f"{paper(z['vggsound'])} ({paper(z['vggsound_map'])})"
    rows.append(["zero-shot BLAT (paper)", paper(z["esc50"]), paper(z["us8k"]), vggsound, paper(z["fsd50k"]),
                 paper(z["audioset"])])  # fmt: skip
    for task, label in (("zeroshot", "zero-shot"), ("linear_probe", "linear probe"), ("finetune", "fine-tune")):
        def cells(model: str, t: str = task) -> list[str]:
            return [_classification_cell(t, metrics, ctx, d, model) for d in CLASSIFICATION]

        rows += [[f"{label}: {row[0]}", *row[1:]] for row in external_rows(ctx.external, len(CLASSIFICATION), cells)]
    for task, label in (("linear_probe", "linear probe"), ("finetune", "fine-tune")):
        for model, who in ((STAGE2, "BLAT stage 2"), ("tagger", "tagger/PANNs")):
            rows.append([f"{label} {who} (ours)",
                         *(_classification_cell(task, metrics, ctx, d, model) for d in CLASSIFICATION)])  # fmt: skip
    for key, label in (("table5_probe", "linear probe"), ("table5_finetune", "fine-tune")):
        for name, who in (("blat", "BLAT"), ("panns", "PANNs")):
            rows.append([f"{label} {who} (paper)", *(paper(PAPER[key][name].get(d)) for d in CLASSIFICATION)])
    notes = ["Linear probe and fine-tune: mean ± std over seeds; fine-tuning keeps its final weights. "
             f"{TIES}", ""]  # fmt: skip
    return ["## Table 5 — classification (%)", "", *table(header, rows), *notes,
            *coverage_lines(metrics, TABLE_TASKS[5]), *protocol_lines(metrics, TABLE_TASKS[5])]  # fmt: skip


PAPER_SETS = frozenset({*(d for d, _ in TARGETS), *CLASSIFICATION})


def _value(entry: dict, key: str) -> str:
    value = entry.get(key)
    if value is None:
        return "—"
    return mean_std(value) if isinstance(value, dict) else pct(value)


def your_datasets(metrics: dict, ctx: ReportContext) -> list[str]:
    """Every dataset of your own (docs/your-data.md) a task scored: retrieval recalls and classification scores,
    each row naming the task and the model; nothing when no such dataset was scored."""
    recall_rows, class_rows = [], []
    for task in ("retrieval", "retrieval_finetune"):
        for dataset, models in sorted(results(metrics, task).items()):
            if dataset not in PAPER_SETS:
                for model, entry in models.items():
                    cells = _tuned(entry, "") if task == "retrieval_finetune" else _recalls(entry, "")
                    recall_rows.append([task, dataset, model, *cells])
    for task in ("zeroshot", "linear_probe", "finetune"):
        for dataset, models in sorted(results(metrics, task).items()):
            if dataset not in PAPER_SETS:
                for model, entry in models.items():
                    class_rows.append([task, dataset, model, _value(entry, "accuracy"), _value(entry, "mAP")])
    if not recall_rows and not class_rows:
        return []
    lines = ["## Your datasets", "", "Datasets of your own (`recipe: captions` / `recipe: labels`, docs/your-data.md) "
             "as the evaluation tasks scored them (%; mean ± std over seeds where a task trains).", ""]  # fmt: skip
    if recall_rows:
        lines += table(["task", "dataset", "model", "A→T R@1", "R@10", "T→A R@1", "R@10"], recall_rows)
    if class_rows:
        lines += table(["task", "dataset", "model", "accuracy", "mAP"], class_rows)
    return lines


def deviations_section(ctx: ReportContext) -> list[str]:
    rows = [[d["topic"], d["ours"], d["paper"], d["switch"]] for d in deviations(ctx.settings)]
    return ["## Deviations from the paper", "", "Where this run differs from the paper or the paper is silent "
            "and we chose; generated from the params in force.", "",
            *table(["topic", "this run", "paper", "params key"], rows)]  # fmt: skip


def figures_section(figures: list[tuple[str, str]]) -> list[str]:
    lines = ["## Figures", "", "Drawn by the `report` stage from the same metrics as the tables; "
             "`dvc plots show` renders their numbers (metrics/plots/) and `dvc plots diff <exp>` compares runs.", ""]
    for caption, path in figures:
        lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return lines


def render(metrics: dict, ctx: ReportContext, figures: list[tuple[str, str]] = ()) -> str:
    """The whole report as Markdown. `metrics`: file stem -> parsed JSON; `figures`: (caption, path relative
    to the report) of each figure to embed."""
    caveat = ("On the demo corpus the absolute numbers are not comparable to the paper's; the claims below are what "
              "the demo can test." if ctx.demo else "These are real datasets: the numbers compare with the paper's "
              "as far as the data this run could read and the deviations listed at the end allow.")  # fmt: skip
    lines = ["# BLAT reproduction — report", "", f"Our numbers: {ctx.corpus}. Paper numbers: SPEC §3 (the paper's "
             f"headline tables). {caveat}", ""]  # fmt: skip
    lines += unalike(metrics)
    lines += ["## Miniature claims", "", CLAIM_RULE, "", *table(["claim", "status", "numbers"],
              [[c["claim"], c["status"], c["evidence"]] for c in claims(metrics, ctx.tasks)])]  # fmt: skip
    for section in (table2, table3, table4, table5, your_datasets):
        lines += section(metrics, ctx)
    if figures:
        lines += figures_section(list(figures))
    lines += deviations_section(ctx)
    return "\n".join(lines).rstrip() + "\n"
