"""Reproduction receipts: the authors' checkpoint (their real key list, random weights) imported by the
`import_external` stage and scored by `evaluate@retrieval` / `evaluate@zeroshot` with report rows; coverage and
pinned id lists when test clips' audio is missing; an evaluation restricted to an id list; the claims rule."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from blat_core.data.prepare import prepare_dataset
from blat_core.data.prepared import PreparedDataset
from blat_core.eval.claims import compare
from blat_core.eval.receipts import IdListError, coverage_line
from blat_core.params import ParamsError
from stages import evaluate as evaluate_stage
from stages import import_external as import_stage
from stages import report as report_stage
from tests.conftest import joins_for, prepare_params_for, relocated, tiny_params
from tests.helpers.authors_blat import authors_state, medium_text_folder
from tests.helpers.tiny_models import make_models


def _params_file(path: Path, corpus: Path, **evaluate) -> Path:
    params = relocated(tiny_params(), corpus)
    params["evaluate"].update(evaluate)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _evaluate(task: str, models: Path, prepared: Path, metrics: Path, params: Path, id_lists: Path | None = None):
    args = [task, "--models", str(models), "--prepared", str(prepared), "--params", str(params),
            "--metrics", str(metrics / f"evaluate_{task}.json"), "--ids", str(metrics / "ids" / task)]  # fmt: skip
    evaluate_stage.main(args + (["--id-lists", str(id_lists)] if id_lists else []))
    return json.loads((metrics / f"evaluate_{task}.json").read_text())


def _report(metrics: Path, params: Path) -> None:
    report_stage.main(["--metrics", str(metrics), "--out", str(metrics / "report.md"), "--params", str(params),
                       "--plots", str(metrics / "plots"), "--figures", str(metrics / "figures")])  # fmt: skip


def _prepare(corpus: Path, root: Path, names: tuple[str, ...], **overrides) -> Path:
    params = prepare_params_for(corpus, **overrides)
    for name in names:
        (root / name).mkdir(parents=True)
        prepare_dataset(name, params, joins_for(name, params), root / name, workers=2)
    return root


# ---------------------------------------------------------------- the authors' released BLAT, scored here
def test_the_authors_checkpoint_is_imported_scored_and_reported(tmp_path, tiny_corpus):
    """Their format (exact key list, 32 kHz front end, BERT-medium) through the import stage; retrieval and
    zero-shot score it as `external:authors_blat` on a corpus prepared at its rate; the report has its rows."""
    prepared = _prepare(tiny_corpus, tmp_path / "prepared", ("audiocaps", "esc50"), sample_rate=32000)
    checkpoint = tmp_path / "blat_cnn14_bertm.pth"
    torch.save({"state_dict": authors_state(with_position_ids=False)}, checkpoint)
    text_folder = medium_text_folder(tmp_path / "bert-medium")
    external = {"authors_blat": {"checkpoint": str(checkpoint), "text_folder": str(text_folder)}}
    tasks = tiny_params()["evaluate"]["tasks"]
    tasks["retrieval"].update(models=[], datasets={"audiocaps": "test"})
    tasks["zeroshot"].update(models=[], datasets=["esc50"])
    params = _params_file(tmp_path / "params.yaml", tiny_corpus, external_models=external, tasks=tasks)
    models, metrics = tmp_path / "models", tmp_path / "metrics"
    import_stage.main(["--out", str(models / "external"), "--metrics", str(metrics / "import_external.json"),
                       "--params", str(params)])  # fmt: skip
    assert (models / "external" / "authors_blat" / "blat.json").is_file()
    imported = json.loads((metrics / "import_external.json").read_text())["import_external"]
    assert imported["configured"] == 1 and imported["models"]["authors_blat"]["checkpoint"] == checkpoint.name

    retrieval = _evaluate("retrieval", models, prepared, metrics, params)
    entry = retrieval["retrieval"]["audiocaps"]["external:authors_blat"]
    assert 0.0 <= entry["text_to_audio"]["R@10"] <= 1.0 and entry["clips"] > 0
    assert retrieval["retrieval_protocol"]["sample_rate"] == {"audiocaps": 32000}
    zeroshot = _evaluate("zeroshot", models, prepared, metrics, params)
    assert 0.0 <= zeroshot["zeroshot"]["esc50"]["external:authors_blat"]["accuracy"] <= 1.0

    _report(metrics, params)
    report = (metrics / "report.md").read_text()
    rows = [line for line in report.splitlines() if "authors' released BLAT `authors_blat`" in line]
    table2 = next(r for r in rows if "scored by this pipeline |" in r and not r.startswith("| zero-shot"))
    recall = f"{100 * entry['audio_to_text']['R@1']:.1f}"
    assert table2.split(" | ")[1] == recall  # AudioCaps A→T R@1, ours from the metrics file
    zero_shot_row = next(r for r in rows if r.startswith("| zero-shot: authors'"))
    accuracy = zeroshot["zeroshot"]["esc50"]["external:authors_blat"]["accuracy"]
    assert zero_shot_row.split(" | ")[1] == f"{100 * accuracy:.1f}"
    assert any(r.startswith("| linear probe: authors'") for r in rows)  # Table 5's other rows name why they are empty


def test_without_an_external_checkpoint_the_rows_say_not_configured(tmp_path, tiny_corpus):
    params = _params_file(tmp_path / "params.yaml", tiny_corpus)
    metrics = tmp_path / "metrics"
    import_stage.main(["--out", str(tmp_path / "external"), "--metrics", str(metrics / "import_external.json"),
                       "--params", str(params)])  # fmt: skip
    assert list((tmp_path / "external").iterdir()) == []
    _report(metrics, params)
    report = (metrics / "report.md").read_text()
    rows = [line for line in report.splitlines() if "authors' released BLAT" in line]
    assert len(rows) >= 5 and all("not configured (`evaluate.external_models`)" in r for r in rows)


# ---------------------------------------------------------------- coverage and pinned lists
@pytest.fixture(scope="module")
def holes(tmp_path_factory, tiny_corpus):
    """AudioCaps with two test clips' audio removed, and ESC-50, prepared; a tiny BLAT model folder."""
    work = tmp_path_factory.mktemp("holes")
    corpus = work / "demo"
    shutil.copytree(tiny_corpus, corpus)
    removed = sorted((corpus / "audiocaps" / "audio" / "test").iterdir())[:2]
    for path in removed:
        path.unlink()
    prepared = _prepare(corpus, work / "prepared", ("audiocaps", "esc50"))
    models = make_models(work / "models")
    return corpus, prepared, models, len(removed)


def test_coverage_counts_missing_audio_and_the_ids_scored_are_pinned(tmp_path, holes):
    corpus, prepared, models, removed = holes
    tasks = tiny_params()["evaluate"]["tasks"]
    tasks["retrieval"].update(models=["blat"], datasets={"audiocaps": "test"})
    params = _params_file(tmp_path / "params.yaml", corpus, tasks=tasks)
    metrics = _evaluate("retrieval", models, prepared, tmp_path, params)
    coverage = metrics["retrieval_coverage"]["audiocaps"]
    test = coverage["splits"]["test"]
    audiocaps = PreparedDataset(prepared / "audiocaps")
    ids = sorted(r["audio_id"] for r in audiocaps.rows("test"))
    assert test["not_prepared"] == {"missing_audio": removed}
    assert test["listed"] == len(ids) + removed and test["prepared"] == len(ids) == test["scored"]
    assert test["listed_known"] and not coverage["restricted"]
    pinned = tmp_path / "ids" / "retrieval" / "audiocaps.txt"
    assert pinned.read_text().split() == ids
    assert coverage["ids"]["sha256"] == hashlib.sha256(pinned.read_bytes()).hexdigest()
    assert coverage["ids"]["count"] == len(ids) == metrics["retrieval"]["audiocaps"]["blat"]["clips"]
    line = coverage_line("AudioCaps", "test", test)
    assert line.startswith(f"AudioCaps test: {len(ids)} of {len(ids) + removed} clips scored")
    assert f"missing_audio {removed}" in line
    protocol = metrics["retrieval_protocol"]
    assert protocol["captions_per_clip"]["audiocaps"]["min"] >= 1 and "tie_rule" in protocol
    assert protocol["runtime"]["cpu_capability"] and protocol["runtime"]["runtime"] in ("native", "portable")


def test_an_id_list_restricts_scoring_to_its_clips(tmp_path, holes):
    corpus, prepared, models, _ = holes
    test_ids = sorted(r["audio_id"] for r in PreparedDataset(prepared / "audiocaps").rows("test"))
    esc50_ids = sorted(PreparedDataset(prepared / "esc50").ids)
    lists = tmp_path / "id_lists"
    lists.mkdir()
    keep = test_ids[:-1]
    assert len(keep) >= 2
    (lists / "audiocaps.txt").write_text("# lab B's copy\n" + "\n".join(keep) + "\n")
    (lists / "esc50.txt").write_text("\n".join(esc50_ids[::7]) + "\n")
    tasks = tiny_params()["evaluate"]["tasks"]
    tasks["retrieval"].update(models=["blat"], datasets={"audiocaps": "test"},
                              id_lists={"audiocaps": str(lists / "audiocaps.txt")})  # fmt: skip
    tasks["zeroshot"].update(models=["blat"], datasets=["esc50"], id_lists={"esc50": str(lists / "esc50.txt")})
    params = _params_file(tmp_path / "params.yaml", corpus, tasks=tasks)
    metrics = _evaluate("retrieval", models, prepared, tmp_path, params, lists)
    assert metrics["retrieval"]["audiocaps"]["blat"]["clips"] == len(keep)
    assert (tmp_path / "ids" / "retrieval" / "audiocaps.txt").read_text().split() == keep
    split = metrics["retrieval_coverage"]["audiocaps"]["splits"]["test"]
    assert split["scored"] == len(keep) and split["not_scored"] == {"not in the id list": 1}
    assert metrics["retrieval_coverage"]["audiocaps"]["restricted"]
    zeroshot = _evaluate("zeroshot", models, prepared, tmp_path, params, lists)
    assert (tmp_path / "ids" / "zeroshot" / "esc50.txt").read_text().split() == esc50_ids[::7]
    assert zeroshot["zeroshot_protocol"]["id_lists"] == {"esc50": str(lists / "esc50.txt")}


def test_an_id_list_naming_absent_clips_fails_saying_how_many_and_which(tmp_path, holes):
    corpus, prepared, models, _ = holes
    test_ids = sorted(r["audio_id"] for r in PreparedDataset(prepared / "audiocaps").rows("test"))
    lists = tmp_path / "id_lists"
    lists.mkdir()
    (lists / "audiocaps.txt").write_text("\n".join([test_ids[0], "not_here_1", "not_here_2"]) + "\n")
    tasks = tiny_params()["evaluate"]["tasks"]
    tasks["retrieval"].update(models=["blat"], datasets={"audiocaps": "test"},
                              id_lists={"audiocaps": str(lists / "audiocaps.txt")})  # fmt: skip
    params = _params_file(tmp_path / "params.yaml", corpus, tasks=tasks)
    with pytest.raises(IdListError, match=r"2 of 3 listed ids .* not_here_1, not_here_2"):
        _evaluate("retrieval", models, prepared, tmp_path, params, lists)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text(test_ids[0] + "\n")
    tasks["retrieval"]["id_lists"] = {"audiocaps": str(outside)}
    params = _params_file(tmp_path / "params.yaml", corpus, tasks=tasks)
    with pytest.raises(ParamsError, match="not inside"):
        _evaluate("retrieval", models, prepared, tmp_path, params, lists)


# ---------------------------------------------------------------- claims respect the spread
def test_a_claim_holds_only_beyond_the_seeds_spread_on_every_set():
    def seeds(mean, std):
        return {"mean": mean, "std": std, "seeds": []}

    better = ("us8k", seeds(0.60, 0.01), seeds(0.50, 0.01))
    within = ("esc50", seeds(0.150, 0.041), seeds(0.175, 0.041))  # the ESC-50 case
    worse = ("fsd50k", seeds(0.40, 0.01), seeds(0.50, 0.01))
    assert compare("c", [better, better])["status"] == "holds"
    assert compare("c", [better, within])["status"] == "mixed"
    assert compare("c", [within])["status"] == "not shown"
    assert compare("c", [worse, worse])["status"] == "does not hold"
    assert compare("c", [better, worse])["status"] == "mixed"
    assert "esc50 15.0 ± 4.1 vs 17.5 ± 4.1 (within spread)" in compare("c", [within])["evidence"]
    assert compare("c", [("esc50", 0.31, 0.30)])["status"] == "holds"  # one run: no spread, any difference counts
