"""The paper profile rehearsed end to end: params.paper.yaml with only the dataset roots, the model paths and
the amount of work changed, on tiny datasets in each dataset's real download layout, a random-weight PANNs
checkpoint in the official training-script format and a random BERT-medium-shaped folder; `dvc repro` runs
every stage to the report (full CNN14 at 32 kHz, BERT-medium, embed 1024, the PANNs import as tagger)."""

from __future__ import annotations

import copy
import json
import re
import sys
import time

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers.paper_layouts import bert_medium_folder, lay_out, panns_checkpoint
from tests.helpers.project import make_project, run

# The amount of work, and nothing else: every other key is params.paper.yaml's own.
WORK = {
    "demo": {"scale": 0.05, "clip_seconds": 1.0, "clotho_seconds": 1.5,
             "sizes": {"esc50_per_class_and_fold": 1, "us8k_per_class_and_fold": 1}},
    "features": {"batch_size": 8},
    "captioner": {"epochs": 1, "batch_size": 8, "warmup_steps": 1, "average_last": 1},
    "synthesize": {"batch_size": 16, "chunk_clips": 64},
    "pretrain": {"batch_size": 4, "max_seconds": 1.0, "eval_batch_size": 8, "log_every": 1, "checkpoint_every": 2,
                 "stage1": {"steps": 2, "warmup_steps": 1, "val_every": 2},
                 "stage2": {"steps": 2, "warmup_steps": 1, "val_every": 2}},
    "tasks": {"retrieval": {"batch_size": 8}, "zeroshot": {"batch_size": 8},
              "linear_probe": {"seeds": [0], "epochs": 2, "batch_size": 16},
              "finetune": {"seeds": [0], "steps": 2, "batch_size": 4, "max_seconds": 1.0, "max_sets": 1},
              "retrieval_finetune": {"seeds": [0], "steps": 2, "warmup_steps": 1, "val_every": 2, "batch_size": 4,
                                     "max_seconds": 1.0},
              "captioning": {"batch_size": 8, "captioner": {"epochs": 1, "batch_size": 8, "warmup_steps": 1,
                                                            "average_last": 1}}},
}  # fmt: skip
METRIC_MODELS = ("corenlp_dir", "fense_sbert_dir", "fense_echecker", "fense_echecker_encoder_dir")  # not offline


def rehearsal_params(roots: dict, panns, bert) -> dict:
    """params.paper.yaml with the roots, the model paths and the amount of work (WORK) changed."""
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.paper.yaml").read_text()))
    for name, root in roots.items():
        params["prepare"]["datasets"][name]["root"] = str(root)
    params["tagger"]["checkpoint"] = str(panns)
    params["text_encoder"]["folder"] = str(bert)
    tasks = params["evaluate"]["tasks"]
    tasks["retrieval_finetune"]["scratch_text_folder"] = str(bert)
    for section in (params["captioner"], tasks["captioning"]["captioner"]):
        section.update({key: "" for key in METRIC_MODELS})
    for section, changes in WORK.items():
        target = tasks if section == "tasks" else params[section]
        for key, value in changes.items():
            if isinstance(value, dict):
                for inner, setting in value.items():
                    target[key][inner] = setting if not isinstance(setting, dict) else {**target[key][inner], **setting}
            else:
                target[key] = value
    return params


@pytest.mark.slow
def test_the_paper_profile_runs_every_stage_to_the_report(tmp_path):
    from blat_core.data.demo.corpus import DemoParams, build_corpus
    from blat_core.params import from_dict

    started = time.perf_counter()
    inputs, work = tmp_path / "inputs", tmp_path / "project"  # tmp_path: 2.3 GB, deleted once the test passes
    for folder in (inputs, work, tmp_path / "home"):
        folder.mkdir()
    panns = panns_checkpoint(inputs / "models" / "Cnn14_mAP=0.431.pth")
    bert = bert_medium_folder(inputs / "models" / "bert-medium")
    draft = rehearsal_params({}, panns, bert)
    counts = build_corpus(from_dict(DemoParams, draft["demo"], "demo"), inputs / "demo", workers=2)
    roots = lay_out(inputs / "demo", inputs / "data")
    params = rehearsal_params(roots, panns, bert)
    paper = yaml.safe_load((ROOT / "params.paper.yaml").read_text())
    assert params["audio_encoder"] == paper["audio_encoder"] and params["pretrain"]["embed_dim"] == 1024
    env = make_project(work, tmp_path / "home", params)
    output = run([sys.executable, "-m", "dvc", "repro"], work, env)
    elapsed = time.perf_counter() - started

    ran = set(re.findall(r"Running stage '([^']+)'", output))
    assert {"tagger", "report", "synthesize", "real_captions", "pretrain@stage1", "evaluate@captioning"} <= ran
    assert len(ran) == 30  # every stage of dvc.yaml (no finetuned@<name> in the paper profile)
    assert "LOAD REPORT" not in output  # BERT-medium's unused pooler loads silently
    metrics = {p.stem: json.loads(p.read_text()) for p in (work / "metrics").glob("*.json")}
    assert metrics["tagger"]["tagger"]["source"] == "imported"
    for name in roots:  # every ingest count exact: each listed clip with its file is prepared, none skipped
        prepared = metrics[f"prepare_{name}"]["prepare"][name]
        assert prepared["skipped"] == {} and prepared["clips"] == counts[name], (name, prepared)
    report = (work / "metrics" / "report.md").read_text()
    # The clips are the demo corpus's, copied into the download layouts: the report knows them by content.
    assert "the claims below are what the demo can test" in report and "These are real datasets" not in report
    assert "a local folder `bert-medium` (8 layers, hidden 512, 8 heads, vocabulary 30522)" in report
    assert str(inputs) not in report and "not run yet" not in report
    print(f"paper-profile rehearsal: {len(ran)} stages, {elapsed:.0f} s")
