"""The miniature claims: what the demo can test of the paper's conclusions, each compared like with like
and saying which models it compares; holds / does not hold / not evaluated, with the numbers."""

from __future__ import annotations

from blat_core.eval.cells import PRIMARY, REALONLY, SCRATCH, STAGE1, STAGE2
from blat_core.eval.cells import TABLE5_SETS as CLASSIFICATION
from blat_core.eval.metrics.retrieval import DIRECTIONS
from blat_core.eval.schema import result, results, synthetic_captions

CLAIM_RULE = ("A comparison claim *holds* only when A beats B on every set it names, by more than the seeds' spread "
              "where there are seeds (the difference of the means exceeds the sum of the two standard deviations); "
              "it *does not hold* when B wins on every set that way; *not shown* when every difference is within "
              "the spread; *mixed* otherwise. Single-run scores (zero-shot, captioning) have no spread: any "
              "difference counts.")  # fmt: skip


def _claim(text: str, holds: bool, evidence: str) -> dict:
    return {"claim": text, "status": "holds" if holds else "does not hold", "evidence": evidence}


def _value(entry) -> tuple[float, float]:
    """(mean, std) of a metric entry: {mean, std, seeds} over seeds, or a single number (std 0)."""
    if isinstance(entry, dict):
        return float(entry["mean"]), float(entry["std"])
    return float(entry), 0.0


def compare(text: str, pairs: list[tuple[str, object, object]], scale: float = 100.0) -> dict:
    """Claim "A beats B" over named sets, each (set, A's entry, B's entry), by CLAIM_RULE."""
    verdicts, words = [], []
    for name, a, b in pairs:
        (ma, sa), (mb, sb) = _value(a), _value(b)
        margin = sa + sb
        verdict = "better" if ma - mb > margin else "worse" if mb - ma > margin else "within spread"
        verdicts.append(verdict)
        spread = f" ± {scale * sa:.1f}" if sa or sb else ""
        other = f" ± {scale * sb:.1f}" if sa or sb else ""
        words.append(f"{name} {scale * ma:.1f}{spread} vs {scale * mb:.1f}{other} ({verdict})")
    if all(v == "better" for v in verdicts):
        status = "holds"
    elif all(v == "worse" for v in verdicts):
        status = "does not hold"
    elif all(v == "within spread" for v in verdicts):
        status = "not shown"
    else:
        status = "mixed"
    return {"claim": text, "status": status, "evidence": "; ".join(words)}


def _not_evaluated(text: str, why: str) -> dict:
    return {"claim": text, "status": "not evaluated", "evidence": why}


def claims(metrics: dict, tasks: dict) -> list[dict]:
    """Each claim's status and evidence; `tasks`: the evaluate.tasks params in force."""
    out = []
    sources = synthetic_captions(metrics)
    text = "Tag guidance improves the synthetic captions (AudioCaps test CIDEr, captioner@tags vs @notags)"
    if sources:
        tags, notags = sources["with_tag"]["cider"], sources["without_tag"]["cider"]
        out.append(_claim(text, tags > notags, f"with tags {tags:.3f} vs without {notags:.3f}"))
    else:
        out.append(_not_evaluated(text, "table3 has not run"))

    retrieval = results(metrics, "retrieval")
    text = "Synthetic data alone transfers: stage 1 (no target caption seen) retrieves far above chance (R@10)"
    sets = [d for d in retrieval if STAGE1 in retrieval[d]]
    if sets:
        pairs = [(retrieval[d][STAGE1]["text_to_audio"]["R@10"], min(1.0, 10 / retrieval[d][STAGE1]["clips"]))
                 for d in sets]  # fmt: skip
        evidence = "; ".join(f"{d} T→A R@10 {100 * r:.1f} vs chance {100 * c:.1f}"
                             for d, (r, c) in zip(sets, pairs, strict=True))  # fmt: skip
        out.append(_claim(text, all(r >= 2 * c for r, c in pairs), evidence))
    else:
        out.append(_not_evaluated(text, "evaluate@retrieval has not scored blat_stage1"))

    text = ("Synthetic pre-training before the real captions helps retrieval (stage 2 vs real-only, both trained on "
            "the targets' training captions: not zero-shot; mean R@1)")  # fmt: skip
    sets = [d for d in retrieval if STAGE2 in retrieval[d] and REALONLY in retrieval[d]]
    if sets:
        def mean_r1(entry: dict) -> float:
            return sum(entry[x]["R@1"] for x in DIRECTIONS) / len(DIRECTIONS)

        out.append(compare(text, [(d, mean_r1(retrieval[d][STAGE2]), mean_r1(retrieval[d][REALONLY])) for d in sets]))
    else:
        out.append(_not_evaluated(text, "evaluate@retrieval has not scored blat_stage2 and blat_realonly"))

    zeroshot = results(metrics, "zeroshot")
    text = "Synthetic pre-training before the real captions helps zero-shot classification (stage 2 vs real-only)"
    sets = [d for d in CLASSIFICATION if STAGE2 in zeroshot.get(d, {}) and REALONLY in zeroshot.get(d, {})]
    if sets:
        out.append(compare(text, [(d, zeroshot[d][STAGE2][PRIMARY[d]], zeroshot[d][REALONLY][PRIMARY[d]])
                                  for d in sets]))  # fmt: skip
    else:
        out.append(_not_evaluated(text, "evaluate@zeroshot has not scored blat_stage2 and blat_realonly"))
    esc = result(metrics, "zeroshot", "esc50", STAGE2)
    text = "BLAT stage 2 beats chance by a wide margin (ESC-50 zero-shot accuracy ≥ 3× chance)"
    if esc:
        out.append(_claim(text, esc["accuracy"] >= 3 * esc["chance_accuracy"],
                          f"{100 * esc['accuracy']:.1f} vs chance {100 * esc['chance_accuracy']:.1f}"))  # fmt: skip
    else:
        out.append(_not_evaluated(text, "evaluate@zeroshot has not scored blat_stage2 on ESC-50"))

    out += _tower_claims(metrics)
    out.append(_retrieval_finetune_claim(metrics, tasks))
    return out


def _tower_claims(metrics: dict) -> list[dict]:
    """BLAT stage 2's audio tower vs the tagger's (our PANNs): probe, captioning features, fine-tuning."""
    out = []
    probe = results(metrics, "linear_probe")
    text = "BLAT's audio tower is a better linear-probe feature than the tagger's (PANNs)"
    sets = [d for d in CLASSIFICATION if "tagger" in probe.get(d, {}) and STAGE2 in probe.get(d, {})]
    if sets:
        out.append(compare(text, [(d, probe[d][STAGE2][PRIMARY[d]], probe[d]["tagger"][PRIMARY[d]]) for d in sets]))
    else:
        out.append(_not_evaluated(text, "evaluate@linear_probe has not run"))
    captioning = results(metrics, "captioning")
    text = "BLAT's frozen frame features caption better than the tagger's (CIDEr, no tags)"
    targets = [d for d in captioning if STAGE2 in captioning[d] and "tagger" in captioning[d]]
    if targets:
        out.append(compare(text, [(d, captioning[d][STAGE2]["cider"], captioning[d]["tagger"]["cider"])
                                  for d in targets]))  # fmt: skip
    else:
        out.append(_not_evaluated(text, "evaluate@captioning has not run"))
    finetune = results(metrics, "finetune")
    text = "BLAT pre-training helps fine-tuned classification (vs fine-tuning the tagger's tower)"
    sets = [d for d in CLASSIFICATION if STAGE2 in finetune.get(d, {}) and "tagger" in finetune.get(d, {})]
    if sets:
        out.append(compare(text, [(d, finetune[d][STAGE2][PRIMARY[d]], finetune[d]["tagger"][PRIMARY[d]])
                                  for d in sets]))  # fmt: skip
    else:
        out.append(_not_evaluated(text, "evaluate@finetune has not run"))
    return out


def _retrieval_finetune_claim(metrics: dict, tasks: dict) -> dict:
    tuned = results(metrics, "retrieval_finetune")
    spec = tasks.get("retrieval_finetune")
    start = next((m for m in (spec.models if spec else []) if m != SCRATCH), STAGE1)
    text = (f"Pre-training helps fine-tuned retrieval ({start} start vs from scratch, R@1 per target and direction, "
            "mean ± std over seeds)")
    targets = [d for d in tuned if start in tuned[d] and SCRATCH in tuned[d]]
    if not targets:
        return _not_evaluated(text, "evaluate@retrieval_finetune has not run with both starts")
    untouched = [d for d in targets if tuned[d][start]["start_kept"] == len(tuned[d][start]["runs"])]
    if untouched:
        return _not_evaluated(text, f"on {', '.join(untouched)} every seed kept the {start} start: "
                              "fine-tuning did not move it, so there is no fine-tuned model to compare")  # fmt: skip
    return compare(text, [(f"{d} {'A→T' if x == DIRECTIONS[0] else 'T→A'}", tuned[d][start][x]["R@1"],
                           tuned[d][SCRATCH][x]["R@1"]) for d in targets for x in DIRECTIONS])  # fmt: skip
