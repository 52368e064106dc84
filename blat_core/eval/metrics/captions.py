"""Caption metrics on top of pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr (offline, with Java),
and SPICE / SPIDEr / FENSE only where their models exist locally.

pycocoevalcap's SPICE downloads Stanford CoreNLP 3.6.0 at run time, which these machines cannot do;
we run the SPICE jar ourselves with the CoreNLP jars from a configured folder, and otherwise report
SPICE and SPIDEr as unavailable with the reason: never as zero, never a crash.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from blat_core.eval.metrics.fense import Fense
from blat_core.eval.metrics.metric_models import LocalModels, MetricsUnavailable  # noqa: F401  (re-exported)

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def require_java() -> None:
    if shutil.which("java") is None:
        raise MetricsUnavailable(
            "Java is not installed: `apt-get install default-jre-headless` (needed by "
            "pycocoevalcap's tokenizer, METEOR and SPICE)"
        )


def ptb_tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
    """pycocoevalcap's PTB tokenizer (lower case, punctuation removed), per id."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    require_java()
    return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})


def caption_scores(
    references: dict[str, list[str]], candidates: dict[str, str], models: LocalModels | None = None
) -> dict:
    """Corpus-level scores of one candidate per id against its references.

    Returns {"bleu_1".."bleu_4", "meteor", "rouge_l", "cider", "spice", "spider", "fense"} with None
    for a metric that cannot run, and "unavailable": {metric: reason} saying why.
    """
    if set(references) != set(candidates):
        raise ValueError("references and candidates must cover the same ids")
    models = models or LocalModels()
    scores = _tokenized_scores(
        ptb_tokenize(references), ptb_tokenize({k: [v] for k, v in candidates.items()}), models.corenlp_dir
    )
    ids = sorted(references)
    _add_fense(scores, [candidates[i] for i in ids], [references[i] for i in ids], models)
    return scores


def _add_fense(scores: dict, candidates: list[str], references: list[list[str]], models: LocalModels) -> None:

    try:
        scorer = Fense(models.fense_sbert_dir, models.fense_echecker, models.fense_echecker_encoder_dir)
        scores["fense"] = scorer.corpus_score(candidates, references)
    except MetricsUnavailable as reason:
        scores["fense"] = None
        scores["unavailable"]["fense"] = str(reason)


def _tokenized_scores(gts: dict[str, list[str]], res: dict[str, list[str]], corenlp_dir: str | Path | None) -> dict:
    """`caption_scores` on captions already PTB-tokenised."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu, _ = Bleu(4).compute_score(gts, res)
    scores = {f"bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    scores["meteor"] = meteor_score(gts, res)
    scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    scores["cider"] = float(Cider().compute_score(gts, res)[0])
    unavailable = {}
    try:
        scores["spice"] = spice_score(gts, res, corenlp_dir)
        scores["spider"] = (scores["cider"] + scores["spice"]) / 2
    except MetricsUnavailable as reason:
        scores["spice"] = scores["spider"] = None
        unavailable["spice"] = unavailable["spider"] = str(reason)
    scores["unavailable"] = unavailable
    return scores


_meteor = None  # one METEOR process per Python process: starting it loads its paraphrase table (~6 s here)


def meteor_score(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    """pycocoevalcap's METEOR, reusing one Java process for every call (scores do not depend on earlier calls)."""
    from pycocoevalcap.meteor.meteor import Meteor

    global _meteor
    if _meteor is None or _meteor.meteor_p.poll() is not None:
        require_java()
        _meteor = Meteor()
    try:
        return float(_meteor.compute_score(gts, res)[0])
    except BaseException:
        # A half-read answer (or a dead process) must not be reused. compute_score leaves its lock held when it
        # fails, and Meteor.__del__ takes that lock before it stops Java: release it so the process is stopped.
        broken, _meteor = _meteor, None
        if broken.lock.locked():
            broken.lock.release()
        raise


def spice_score(gts: dict[str, list[str]], res: dict[str, list[str]], corenlp_dir: str | Path | None) -> float:
    """SPICE with pycocoevalcap's jar and the CoreNLP 3.6.0 jars from `corenlp_dir` (no download)."""
    if not corenlp_dir:
        raise MetricsUnavailable(
            "SPICE needs Stanford CoreNLP 3.6.0: set the CoreNLP folder param to a folder "
            f"holding {' and '.join(CORENLP_JARS)}"
        )
    folder = Path(corenlp_dir)
    missing = [jar for jar in CORENLP_JARS if not (folder / jar).is_file()]
    if missing:
        raise MetricsUnavailable(f"SPICE needs {', '.join(missing)} in {folder}")
    require_java()
    import pycocoevalcap.spice.spice as spice_module

    source = Path(spice_module.__file__).parent
    with tempfile.TemporaryDirectory(prefix="spice-") as work:
        work = Path(work)
        (work / "lib").mkdir()
        for jar in (source / "lib").glob("*.jar"):
            (work / "lib" / jar.name).symlink_to(jar)
        for jar in CORENLP_JARS:
            (work / "lib" / jar).symlink_to(folder.resolve() / jar)
        (work / "spice-1.0.jar").symlink_to(source / "spice-1.0.jar")
        payload = [{"image_id": k, "test": res[k][0], "refs": gts[k]} for k in sorted(gts)]
        (work / "in.json").write_text(json.dumps(payload))
        subprocess.run(
            ["java", "-jar", "-Xmx8G", "spice-1.0.jar", "in.json", "-out", "out.json", "-subset", "-silent"],
            cwd=work,
            check=True,
            capture_output=True,
        )
        results = json.loads((work / "out.json").read_text())
    values = [float(r["scores"]["All"]["f"]) for r in results]
    return float(sum(values) / len(values))


def cider(references: dict[str, list[str]], candidates: dict[str, str]) -> float:
    """CIDEr alone (PTB-tokenised), for per-epoch model selection."""
    from pycocoevalcap.cider.cider import Cider

    gts = ptb_tokenize(references)
    res = ptb_tokenize({k: [v] for k, v in candidates.items()})
    return float(Cider().compute_score(gts, res)[0])


def human_scores(references: dict[str, list[str]], models: LocalModels | None = None) -> dict:
    """The "human" row: each of the k reference captions scored against the other k-1, averaged over k."""
    models = models or LocalModels()
    count = min(len(v) for v in references.values())
    tokens = ptb_tokenize(references)  # once: tokenising a caption does not depend on the others
    ids = sorted(references)
    rows = []
    for k in range(count):
        held_out = {i: [v[k]] for i, v in tokens.items()}
        others = {i: v[:k] + v[k + 1 :] for i, v in tokens.items()}
        rows.append(_tokenized_scores(others, held_out, models.corenlp_dir))
        raw_others = [references[i][:k] + references[i][k + 1 :] for i in ids]
        _add_fense(rows[-1], [references[i][k] for i in ids], raw_others, models)
    merged = {
        key: (None if rows[0][key] is None else sum(r[key] for r in rows) / count)
        for key in rows[0]
        if key != "unavailable"
    }
    return {**merged, "unavailable": rows[0]["unavailable"]}
