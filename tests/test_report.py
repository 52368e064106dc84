"""The report from fixture metrics and the params in force: Table 2's rows are the right models (the
synthetic-only row is stage 1; stage 2 and real-only are apart, as not zero-shot), a fine-tuned row that
kept its start says so, every empty cell gives its reason, and the deviations follow the params."""

from __future__ import annotations

import copy

import pytest
import yaml

from blat_core.eval.cells import NOT_RUN
from blat_core.eval.claims import claims
from blat_core.eval.deviations import load_settings as settings
from blat_core.eval.report import ReportContext, corpus_words, render
from tests.conftest import ROOT


def _retrieval(r1: float) -> dict:
    direction = {"R@1": r1, "R@5": 0.5, "R@10": 0.8, "median_rank": 3.0}
    return {"audio_to_text": direction, "text_to_audio": direction, "geometric_mean": 0.5, "clips": 40}


def _tuned(r1: float, kept: list[bool]) -> dict:
    cell = {"R@1": {"mean": r1, "std": 0.01, "seeds": [r1] * len(kept)}, "R@10": {"mean": 0.9, "std": 0.0}}
    runs = [{"seed": s, "steps": 30, "kept_step": 0 if k else 30, "start_kept": k} for s, k in enumerate(kept)]
    return {"audio_to_text": cell, "text_to_audio": cell, "start_kept": sum(kept), "runs": runs}


def _captions(cider: float) -> dict:
    return {"bleu_4": 0.3, "rouge_l": 0.5, "meteor": 0.2, "cider": cider, "spice": None, "spider": None,
            "fense": None, "unavailable": {"spice": "no CoreNLP", "spider": "no CoreNLP",
                                           "fense": "no FENSE"}}  # fmt: skip


FIXTURE = {
    "captioning_synthetic": {"captioning_synthetic": {
        name: _captions(cider) for name, cider in (("without_tag", 0.7), ("with_tag", 0.9), ("human", 2.0))}},
    "evaluate_retrieval": {"retrieval": {d: {"blat_stage1": _retrieval(0.1), "blat_stage2": _retrieval(0.3),
                                             "blat_realonly": _retrieval(0.2)} for d in ("audiocaps", "clotho")}},
    "evaluate_zeroshot": {"zeroshot": {
        "esc50": {"blat_stage2": {"accuracy": 0.5, "mAP": 0.6, "chance_accuracy": 0.05},
                  "blat_realonly": {"accuracy": 0.4, "mAP": 0.5, "chance_accuracy": 0.05}}}},
}  # fmt: skip


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    """params.yaml with the demo's evaluation lists, but no finetune of FSD50K (an exclusion to explain)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["tasks"]["finetune"]["datasets"] = ["esc50", "us8k"]
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _render(metrics: dict, params_file) -> str:
    return render(metrics, ReportContext("a fixture", settings(params_file)))


def _row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_table2_rows_are_the_models_they_name(params_file):
    """Synthetic-only = stage 1's numbers; stage 2 and real-only sit under the not-zero-shot heading."""
    text = _render(FIXTURE, params_file)
    assert _row(text, "BLAT stage 1, synthetic captions only (ours)")[:2] == ["10.0", "80.0"]
    assert _row(text, "BLAT stage 2: stage 1, then the real captions (ours)")[0] == "30.0"
    assert _row(text, "real-only: the real captions from the tagger (ours)")[0] == "20.0"
    lines = text.splitlines()
    heading = next(i for i, line in enumerate(lines) if "not zero-shot**" in line)
    assert lines.index(next(line for line in lines if line.startswith("| BLAT stage 2:"))) > heading
    assert "| BLAT, synthetic data only (paper) | 32.6 | 76.7 | 23.5 | 68.4 |" in text


def test_a_fine_tuned_row_that_kept_its_start_says_so(params_file):
    tuned = {"audiocaps": {"blat_stage1": _tuned(0.4, [True] * 3), "scratch": _tuned(0.3, [False] * 3)},
             "clotho": {"blat_stage1": _tuned(0.2, [False, True, False]), "scratch": _tuned(0.1, [False] * 3)}}
    metrics = {**FIXTURE, "evaluate_retrieval_finetune": {"retrieval_finetune": tuned}}
    text = _render(metrics, params_file)
    row = next(line for line in text.splitlines() if line.startswith("| BLAT fine-tuned from blat_stage1 (ours"))
    assert "40.0 ± 1.0 — start kept (not fine-tuned)" in row and "20.0 ± 1.0 (start kept by 1/3 seeds)" in row
    status = {c["claim"].split(" (")[0]: c for c in claims(metrics, settings(params_file).tasks)}
    assert status["Pre-training helps fine-tuned retrieval"]["status"] == "not evaluated"
    assert "every seed kept the blat_stage1 start" in status["Pre-training helps fine-tuned retrieval"]["evidence"]
    tuned["audiocaps"]["blat_stage1"] = _tuned(0.4, [False] * 3)
    tuned["clotho"]["blat_stage1"] = _tuned(0.2, [False] * 3)
    status = {c["claim"].split(" (")[0]: c for c in claims(metrics, settings(params_file).tasks)}
    assert status["Pre-training helps fine-tuned retrieval"]["status"] == "holds"


def test_every_empty_cell_gives_its_reason(params_file):
    text = _render(FIXTURE, params_file)
    table5 = text[text.index("## Table 5"):text.index("## Deviations")]
    assert "excluded by params (`evaluate.tasks.finetune.datasets`)" in _row(table5, "fine-tune BLAT stage 2 (ours)")[3]
    assert NOT_RUN in _row(table5, "linear probe BLAT stage 2 (ours)")[0]  # configured, metrics file absent
    assert _row(table5, "linear probe PANNs (paper)")[4] == "not in the paper"
    assert _row(text, "synthetic, with tags (ours)")[4] == "needs CoreNLP (`corenlp_dir`)"
    assert _row(text, "BLAT (paper)")[1] == "not in the paper"  # Table 4's BLEU-4 column
    for line in text.splitlines():
        if line.startswith("| ") and "---" not in line and "**" not in line:  # bold lines head a group of rows
            assert "| – |" not in line and "|  |" not in line, line


def test_no_cell_says_not_run_once_every_metrics_file_exists(params_file):
    empty = {"evaluate_" + task: {task: {}} for task in settings(params_file).tasks}
    text = _render({**FIXTURE, **empty}, params_file)
    assert NOT_RUN not in text


def test_the_deviations_follow_the_params(params_file, tmp_path):
    text = _render(FIXTURE, params_file)
    section = text[text.index("## Deviations from the paper"):]
    for topic in ("Synthesis filter", "Leakage guard", "Pre-training model selection", "Real-only baseline's compute",
                  "Fine-tuned classification", "AudioSet probe / fine-tune training split", "Fine-tuned retrieval"):
        assert f"| {topic} |" in section, topic
    assert "`pretrain.realonly_compute: matched`" in section and "the new head at 10×" in section
    params = yaml.safe_load(params_file.read_text())
    matched = copy.deepcopy(params)
    matched["pretrain"]["realonly_compute"] = "matched"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(matched))
    steps = params["pretrain"]["stage1"]["steps"] + params["pretrain"]["stage2"]["steps"]
    assert f"{steps} steps (matched)" in _render(FIXTURE, path)


def test_a_paper_profile_report_says_what_it_ran_on_and_prints_no_machine_path(tmp_path):
    """Under params.paper.yaml the opening does not call the run a demo, and the text tower is named by its
    folder's name and its config's shape, not by where it is on this machine."""
    from transformers import BertConfig


    folder = tmp_path / "machine-specific" / "bert-medium"
    BertConfig(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048).save_pretrained(
        str(folder))  # fmt: skip
    params = yaml.safe_load((ROOT / "params.paper.yaml").read_text())
    params["text_encoder"]["folder"] = str(folder)
    path = tmp_path / "params.paper.yaml"
    path.write_text(yaml.safe_dump(params))
    text = render(FIXTURE, ReportContext(corpus_words(False), settings(path), False))
    opening = text.split("## ")[0]
    assert "demo" not in opening and "prepare.datasets" in opening
    assert "a local folder `bert-medium` (8 layers, hidden 512, 8 heads, vocabulary 30522)" in text
    assert str(tmp_path) not in text and "machine-specific" not in text
    assert "the claims below are what the demo can test" in render(
        FIXTURE, ReportContext(corpus_words(True), settings(ROOT / "params.yaml"), True))  # fmt: skip


def test_the_demo_corpus_is_known_by_its_content_not_its_folder_name(tiny_corpus, tmp_path):
    """A dataset is make_demo's when scan's metadata digests meet make_demo's record: the demo's files copied into
    a real download layout (the paper-profile rehearsal) are the demo's; a real dataset under a root named
    `/mnt/data/demo_x` (the old rule matched `data/demo` in the path) is not."""
    import shutil

    from blat_core.data.sources import generated_datasets, metadata_digests, metadata_fingerprint

    record = {name: metadata_digests(tiny_corpus / name) for name in ("esc50", "clotho")}
    copied = tmp_path / "downloads" / "ESC-50"
    shutil.copytree(tiny_corpus / "esc50" / "meta", copied / "meta")
    real = tmp_path / "mnt" / "data" / "demo_x" / "clotho"
    shutil.copytree(tiny_corpus / "clotho" / "metadata", real)
    for csv_file in real.glob("*.csv"):  # other clips and captions: real metadata is never the generator's bytes
        csv_file.write_text(csv_file.read_text().replace("a ", "one "))
    fingerprints = {"esc50": {"meta": metadata_fingerprint(copied / "meta")},
                    "clotho": {"meta": metadata_fingerprint(real)}}  # fmt: skip
    assert generated_datasets(fingerprints, record) == ["esc50"]
    assert generated_datasets(fingerprints, {}) == []
