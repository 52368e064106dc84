"""The paper's tables with our numbers beside the paper's (SPEC §3), and the miniature-claims check.

Every number of ours comes from a metrics file; a cell whose task has not run (or cannot run here)
says so instead of showing a number.
"""

from __future__ import annotations

from typing import Any

from blat_core.data.datasets import recipe
from blat_core.eval.schema import results, synthetic_captions

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
CLASSIFICATION = ("esc50", "us8k", "vggsound", "fsd50k", "audioset")  # Table 5's columns, in the paper's order
PRIMARY = {name: recipe(name).classification.primary_metric for name in CLASSIFICATION}
NOT_RUN = "not run yet"


def pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def paper(value: Any) -> str:
    return "–" if value is None else f"{value:.1f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def table2(metrics: dict) -> list[str]:
    retrieval = results(metrics, "retrieval")
    header = ["model", "AudioCaps A→T R@1", "R@10", "T→A R@1", "R@10", "Clotho A→T R@1", "R@10", "T→A R@1", "R@10"]
    rows = []
    for name, label in (("blat_stage2", "BLAT zero-shot (ours)"), ("blat_realonly", "real-only (ours)"),
                        ("blat_stage1", "stage 1 only (ours)")):  # fmt: skip
        cells = [label]
        for dataset in ("audiocaps", "clotho"):
            result = retrieval.get(dataset, {}).get(name)
            for direction in ("audio_to_text", "text_to_audio"):
                for k in ("R@1", "R@10"):
                    cells.append(pct(result[direction][k]) if result else NOT_RUN)
        rows.append(cells)
    for key, label in (("table2_zeroshot", "BLAT zero-shot (paper)"), ("table2_finetuned", "BLAT fine-tuned (paper)"),
                       ("table2_scratch", "from scratch (paper)")):  # fmt: skip
        rows.append([label, *(paper(v) for d in ("audiocaps", "clotho") for v in PAPER[key][d])])
    tuned = results(metrics, "retrieval_finetune")
    for name, label in (("blat_stage2", "BLAT fine-tuned (ours)"), ("scratch", "from scratch (ours)")):
        cells = [label]
        for dataset in ("audiocaps", "clotho"):
            result = tuned.get(dataset, {}).get(name)
            for direction in ("audio_to_text", "text_to_audio"):
                for k in ("R@1", "R@10"):
                    cells.append(f"{pct(result[direction][k]['mean'])} ± {pct(result[direction][k]['std'])}"
                                 if result else NOT_RUN)  # fmt: skip
        rows.append(cells)
    return ["## Table 2 — text–audio retrieval (%)", "", *_table(header, rows)]


def table3(metrics: dict) -> list[str]:
    result = synthetic_captions(metrics)
    columns = ("bleu_4", "rouge_l", "meteor", "cider", "spice", "fense")
    header = ["captions (AudioCaps test)", "BLEU-4", "ROUGE-L", "METEOR", "CIDEr", "SPICE", "FENSE"]
    rows = []
    for name, label in (("without_tag", "synthetic, without tags"), ("with_tag", "synthetic, with tags"),
                        ("human", "human")):  # fmt: skip
        scores = result.get(name)
        rows.append([f"{label} (ours)", *((pct(scores.get(c)) if scores else NOT_RUN) for c in columns)])
        rows.append([f"{label} (paper)", *(paper(v) for v in PAPER["table3"][name])])
    notes = []
    unavailable = (result.get("with_tag") or {}).get("unavailable", {})
    for metric, reason in sorted(unavailable.items()):
        notes.append(f"- {metric.upper()} unavailable: {reason}")
    return ["## Table 3 — quality of the synthetic captions (%)", "", *_table(header, rows), *notes,
            *([""] if notes else [])]  # fmt: skip


def table4(metrics: dict) -> list[str]:
    result = results(metrics, "captioning")
    columns = ("bleu_4", "rouge_l", "meteor", "cider", "spider", "fense")
    header = ["captioner features", "dataset", "BLEU-4", "ROUGE-L", "METEOR", "CIDEr", "SPIDEr", "FENSE"]
    rows, unavailable = [], {}
    for name, label in (("tagger", "PANNs / tagger"), ("blat_stage2", "BLAT")):
        for dataset, title in (("audiocaps", "AudioCaps"), ("clotho", "Clotho")):
            scores = result.get(dataset, {}).get(name)
            rows.append([f"{label} (ours)", title, *((pct(scores.get(c)) if scores else NOT_RUN) for c in columns)])
            unavailable.update((scores or {}).get("unavailable", {}))
    for name, label in (("panns", "PANNs"), ("blat", "BLAT")):
        for dataset, title in (("audiocaps", "AudioCaps"), ("clotho", "Clotho")):
            spider, fense = PAPER["table4"][dataset][name]
            rows.append([f"{label} (paper)", title, "–", "–", "–", "–", paper(spider), paper(fense)])
    notes = [f"- {metric.upper()} unavailable: {reason}" for metric, reason in sorted(unavailable.items())]
    return ["## Table 4 — captioning on frozen audio features (%), captioner without tags", "",
            *_table(header, rows), *notes, *([""] if notes else [])]  # fmt: skip


def table5(metrics: dict) -> list[str]:
    zeroshot = results(metrics, "zeroshot")
    probe = results(metrics, "linear_probe")
    finetune = results(metrics, "finetune")
    header = ["setting", "ESC-50 acc", "US8K acc", "VGGSound acc (mAP)", "FSD50K mAP", "AudioSet mAP"]
    rows = []
    for name, label in (("blat_stage2", "zero-shot BLAT (ours)"), ("blat_realonly", "zero-shot real-only (ours)"),
                        ("blat_stage1", "zero-shot stage 1 only (ours)")):  # fmt: skip
        cells = [label]
        for dataset in CLASSIFICATION:
            result = zeroshot.get(dataset, {}).get(name)
            if result is None:
                cells.append(NOT_RUN)
            elif dataset == "vggsound":
                cells.append(f"{pct(result['accuracy'])} ({pct(result['mAP'])})")
            else:
                cells.append(pct(result[PRIMARY[dataset]]))
        rows.append(cells)
    z = PAPER["table5_zeroshot"]
    vggsound = f"{paper(z['vggsound'])} ({paper(z['vggsound_map'])})"
    rows.append(["zero-shot BLAT (paper)", paper(z["esc50"]), paper(z["us8k"]), vggsound, paper(z["fsd50k"]),
                 paper(z["audioset"])])  # fmt: skip
    for source, name, label in ((probe, "blat_stage2", "linear probe BLAT (ours)"),
                                (probe, "tagger", "linear probe tagger/PANNs (ours)"),
                                (finetune, "blat_stage2", "fine-tune BLAT (ours)"),
                                (finetune, "tagger", "fine-tune tagger/PANNs (ours)")):  # fmt: skip
        cells = [label]
        for dataset in CLASSIFICATION:
            result = source.get(dataset, {}).get(name)
            if result is None:
                cells.append(NOT_RUN)
            else:
                value = result[PRIMARY[dataset]]
                cells.append(f"{pct(value['mean'])} ± {pct(value['std'])}")
        rows.append(cells)
    for key, label in (("table5_probe", "linear probe"), ("table5_finetune", "fine-tune")):
        for name in ("blat", "panns"):
            values = PAPER[key][name]
            who = "BLAT" if name == "blat" else "PANNs"
            rows.append([f"{label} {who} (paper)", *(paper(values.get(d)) for d in CLASSIFICATION)])
    return ["## Table 5 — classification (%)", "", *_table(header, rows)]


def claims(metrics: dict) -> list[dict]:
    """Each miniature claim: holds / does not hold / not evaluated, with the numbers behind it."""
    out = []
    table3_rows = synthetic_captions(metrics)
    if table3_rows:
        tags, notags = table3_rows["with_tag"]["cider"], table3_rows["without_tag"]["cider"]
        out.append(_claim("Tag guidance improves the synthetic captions (AudioCaps test CIDEr)", tags > notags,
                          f"with tags {tags:.3f} vs without {notags:.3f}"))  # fmt: skip
    zeroshot = results(metrics, "zeroshot")
    if zeroshot:
        blat = [zeroshot[d]["blat_stage2"][PRIMARY[d]] for d in CLASSIFICATION if d in zeroshot]
        real = [zeroshot[d]["blat_realonly"][PRIMARY[d]] for d in CLASSIFICATION if d in zeroshot]
        wins = sum(b > r for b, r in zip(blat, real, strict=True))
        out.append(_claim(
            "Synthetic pre-training improves zero-shot classification over real-only training",
            sum(blat) / len(blat) > sum(real) / len(real),
            f"mean over {len(blat)} sets {100 * sum(blat) / len(blat):.1f} vs {100 * sum(real) / len(real):.1f}; "
            f"better on {wins} of {len(blat)}",
        ))  # fmt: skip
        esc = zeroshot.get("esc50", {}).get("blat_stage2")
        if esc:
            out.append(_claim("BLAT beats chance by a wide margin (ESC-50 zero-shot accuracy ≥ 3× chance)",
                              esc["accuracy"] >= 3 * esc["chance_accuracy"],
                              f"{100 * esc['accuracy']:.1f} vs chance {100 * esc['chance_accuracy']:.1f}"))  # fmt: skip
    retrieval = results(metrics, "retrieval")
    if retrieval:
        pairs = [(retrieval[d]["blat_stage2"], retrieval[d]["blat_realonly"]) for d in retrieval]
        blat = sum(b[x]["R@1"] for b, _ in pairs for x in ("audio_to_text", "text_to_audio")) / (2 * len(pairs))
        real = sum(r[x]["R@1"] for _, r in pairs for x in ("audio_to_text", "text_to_audio")) / (2 * len(pairs))
        out.append(_claim("Synthetic pre-training improves zero-shot retrieval over real-only training (mean R@1)",
                          blat > real, f"{100 * blat:.1f} vs {100 * real:.1f}"))  # fmt: skip
    probe = results(metrics, "linear_probe")
    if probe:
        sets = [d for d in CLASSIFICATION if d in probe and "tagger" in probe[d] and "blat_stage2" in probe[d]]
        blat = [probe[d]["blat_stage2"][PRIMARY[d]]["mean"] for d in sets]
        tagger = [probe[d]["tagger"][PRIMARY[d]]["mean"] for d in sets]
        wins = sum(b > t for b, t in zip(blat, tagger, strict=True))
        out.append(_claim("BLAT's audio tower is a better linear-probe feature than the tagger's (PANNs)",
                          wins > len(sets) / 2, f"better on {wins} of {len(sets)} sets"))  # fmt: skip
    captioning = results(metrics, "captioning")
    targets = [d for d in captioning if "blat_stage2" in captioning[d] and "tagger" in captioning[d]]
    if targets:
        blat = [captioning[d]["blat_stage2"]["cider"] for d in targets]
        tagger = [captioning[d]["tagger"]["cider"] for d in targets]
        pairs = zip(targets, blat, tagger, strict=True)
        evidence = "; ".join(f"{d} {100 * b:.1f} vs {100 * t:.1f}" for d, b, t in pairs)
        out.append(_claim("BLAT's frozen frame features caption better than the tagger's (CIDEr, no tags)",
                          all(b > t for b, t in zip(blat, tagger, strict=True)), evidence))  # fmt: skip
    else:
        out.append({"claim": "BLAT's frozen frame features caption better than the tagger's", "status": "not evaluated",
                    "evidence": "evaluate@captioning has not run"})  # fmt: skip
    finetune = results(metrics, "finetune")
    sets = [d for d in CLASSIFICATION if "blat_stage2" in finetune.get(d, {}) and "tagger" in finetune.get(d, {})]
    if sets:
        blat = [finetune[d]["blat_stage2"][PRIMARY[d]]["mean"] for d in sets]
        tagger = [finetune[d]["tagger"][PRIMARY[d]]["mean"] for d in sets]
        evidence = "; ".join(f"{d} {100 * b:.1f} vs {100 * t:.1f}" for d, b, t in zip(sets, blat, tagger, strict=True))
        out.append(_claim("BLAT pre-training helps fine-tuned classification (vs fine-tuning the tagger's tower)",
                          sum(blat) > sum(tagger), evidence))  # fmt: skip
    else:
        out.append({"claim": "BLAT pre-training helps fine-tuned classification", "status": "not evaluated",
                    "evidence": "evaluate@finetune has not run"})  # fmt: skip
    tuned = results(metrics, "retrieval_finetune")
    targets = [d for d in tuned if "blat_stage2" in tuned[d] and "scratch" in tuned[d]]
    if targets:
        directions = ("audio_to_text", "text_to_audio")
        blat = [tuned[d]["blat_stage2"][x]["R@1"]["mean"] for d in targets for x in directions]
        scratch = [tuned[d]["scratch"][x]["R@1"]["mean"] for d in targets for x in directions]
        out.append(_claim("Pre-training helps fine-tuned retrieval (BLAT vs from scratch, mean R@1)",
                          sum(blat) > sum(scratch),
                          f"{100 * sum(blat) / len(blat):.1f} vs {100 * sum(scratch) / len(scratch):.1f} "
                          f"over {', '.join(targets)}"))  # fmt: skip
    else:
        out.append({"claim": "Pre-training helps fine-tuned retrieval", "status": "not evaluated",
                    "evidence": "evaluate@retrieval_finetune has not run"})  # fmt: skip
    return out


def _claim(text: str, holds: bool, evidence: str) -> dict:
    return {"claim": text, "status": "holds" if holds else "does not hold", "evidence": evidence}


def render(metrics: dict, corpus: str) -> str:
    """The whole report as Markdown. `metrics`: file stem -> parsed JSON."""
    lines = ["# BLAT reproduction — report", "", f"Our numbers: {corpus}. Paper numbers: SPEC §3 (the paper's "
             "headline tables). On the demo corpus the absolute numbers are not comparable to the paper's; "
             "the claims below are what the demo can test.", ""]  # fmt: skip
    lines += ["## Miniature claims", "", *_table(["claim", "status", "numbers"],
              [[c["claim"], c["status"], c["evidence"]] for c in claims(metrics)])]  # fmt: skip
    for section in (table2, table3, table4, table5):
        lines += section(metrics)
    return "\n".join(lines).rstrip() + "\n"
