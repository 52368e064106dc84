"""The DVC pipeline end to end on the tiny corpus: repro runs every stage, a second repro re-runs
nothing but the cheap always-changed scan and import_external, and a changed audio file re-runs only its
dataset's prepare."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from tests.conftest import relocated, tiny_params
from tests.helpers.project import make_project, run

MODELS = ("tagger", "captioner_tags", "captioner_notags", "blat_stage1", "blat_stage2", "blat_realonly")
ALWAYS = {"scan", "import_external"}  # the always-changed stages: cheap, outputs unchanged when inputs are


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    """A fresh git + DVC copy of the project's tracked files, with the tiny demo params."""
    work = tmp_path_factory.mktemp("project")
    return work, make_project(work, tmp_path_factory.mktemp("home"), tiny_params())


@pytest.mark.slow
def test_repro_then_noop_then_one_dataset(project):
    work, env = project
    dvc = [sys.executable, "-m", "dvc"]
    first = _ran(run(dvc + ["repro"], work, env))
    datasets = tiny_params()["prepare"]["datasets"]
    features = {f"features@{name}" for name in tiny_params()["features"]["datasets"]}
    captioners = {"captioner@tags", "captioner@notags", "table3", "synthesize"}
    pretraining = {"pretrain@stage1", "pretrain@stage2", "pretrain@realonly"}
    evaluation = {f"evaluate@{task}" for task in tiny_params()["evaluate"]["tasks"]} | {"report"}
    prepares = {f"prepare@{name}" for name in datasets}
    expected = {"make_demo", "scan", "import_external", "tagger", "real_captions"} | prepares | features | captioners
    expected |= pretraining
    expected |= evaluation
    assert first == expected
    assert json.loads((work / "metrics" / "tagger.json").read_text())["tagger"]["audioset_eval"]["mAP"] > 0
    table3 = json.loads((work / "metrics" / "captioning_synthetic.json").read_text())["captioning_synthetic"]
    assert set(table3) == {"without_tag", "with_tag", "human"}
    assert table3["human"]["cider"] > 0 and table3["with_tag"]["spice"] is None
    synthetic = json.loads((work / "metrics" / "synthesize.json").read_text())["synthesize"]
    assert synthetic["captions"] == synthetic["kept"] > 0 and synthetic["dropped"]["evaluation_split"] > 0
    for stage in ("stage1", "stage2", "realonly"):
        result = json.loads((work / "metrics" / f"pretrain_{stage}.json").read_text())["pretrain"][stage]
        assert result["final"]["step"] == 4 and 0 <= result["best"]["text_to_audio"]["R@10"] <= 1
        assert (work / "data" / "models" / f"blat_{stage}" / "blat.safetensors").is_file()
    report = (work / "metrics" / "report.md").read_text()
    assert "## Table 5" in report and "| zero-shot BLAT stage 2 (ours) |" in report
    assert "not run yet" not in report  # every configured task ran (Table 4 from evaluate@captioning too)
    captioning = json.loads((work / "metrics" / "evaluate_captioning.json").read_text())["captioning"]
    assert set(captioning) == {"audiocaps", "clotho"} and captioning["clotho"]["tagger"]["cider"] >= 0
    for name in datasets:
        metrics = json.loads((work / "metrics" / f"prepare_{name}.json").read_text())
        assert metrics["prepare"][name]["clips"] > 0

    # Nothing changed: only the always-changed scan and import_external run; every prepare is skipped, and the
    # empty import leaves every evaluation alone.
    assert _ran(run(dvc + ["repro"], work, env)) == ALWAYS
    status = run(dvc + ["status"], work, env)
    assert "prepare@" not in status and "make_demo" not in status


@pytest.mark.slow
def test_export_of_the_demo_stage2(project, tmp_path):
    """`blat export --format onnx` on the demo's blat_stage2: the exported folder embeds the test clips exactly as
    the pipeline's evaluation does, the ONNX towers pass the parity check, and the card holds this run's
    retrieval numbers with their coverage and the lock entry the folder came from."""
    from blat_core.data.prepared import PreparedDataset
    from blat_core.models.blat_model import load_blat
    from blat_core.models.embed import embed_captions, embed_clips

    work, env = project
    run([sys.executable, "-m", "dvc", "repro"], work, env)  # nothing to do after the first test
    out = tmp_path / "blat_stage2"
    said = run([sys.executable, "-m", "blat_core.app.cli", "export", "data/models/blat_stage2", "--format", "onnx",
                "--out", str(out)], work, env)  # fmt: skip
    assert "onnxruntime vs PyTorch" in said and (out / "audio.onnx").is_file() and (out / "text.onnx").is_file()
    import blat_core

    exported = blat_core.load_model(out)
    prepared = PreparedDataset(work / "data" / "prepared" / "audiocaps")
    ids = [row["audio_id"] for row in prepared.evaluation_rows("test")][:12]
    pipeline, tokenizer, _ = load_blat(work / "data" / "models" / "blat_stage2")
    expected = embed_clips(pipeline, prepared, ids, 4, "cpu").numpy()
    got = exported.embed_audio([prepared.waveform(i) for i in ids], sample_rate=prepared.sample_rate)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    captions = ["a dog barks", "rain falls on a roof"]
    np.testing.assert_allclose(exported.embed_text(captions), embed_captions(pipeline, tokenizer, captions, 2, "cpu"),
                               atol=1e-6)  # fmt: skip

    card = (out / "README.md").read_text()
    matter = yaml.safe_load(card.split("---\n")[1])
    assert set(matter["datasets"]) >= {"audiocaps", "clotho", "macs", "audioset"}
    metrics = json.loads((work / "metrics" / "evaluate_retrieval.json").read_text())
    results = {(r["task"]["type"], r["dataset"]["type"]): r for r in matter["model-index"][0]["results"]}
    audiocaps = results[("audio-text-retrieval", "audiocaps")]
    values = {m["type"]: m["value"] for m in audiocaps["metrics"]}
    truth = metrics["retrieval"]["audiocaps"]["blat_stage2"]["text_to_audio"]["R@10"]
    assert values["text_to_audio/R@10"] == round(truth, 4)
    scored = metrics["retrieval_coverage"]["audiocaps"]["splits"]["test"]["scored"]
    assert audiocaps["dataset"]["args"]["clips_scored"] == scored > 0
    assert ("zero-shot-audio-classification", "esc50") in results
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]["pretrain@stage2"]
    (model_out,) = [o for o in lock["outs"] if o["path"] == "data/models/blat_stage2"]
    assert f"`{model_out['md5']}`" in card and "- stage: `pretrain@stage2`; DVC artifact `blat-stage2`" in card
    assert "(`dvc status pretrain@stage2`): yes" in card


@pytest.mark.slow
def test_experiment_reruns_only_the_affected_stages(project):
    """`dvc exp run -S evaluate.tasks.zeroshot.prompt=...` through the Python API re-runs evaluate@zeroshot
    (and the report that reads its metrics), nothing else."""
    work, env = project
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", "reproduced"], work, env)
    metrics = sorted((work / "metrics").glob("*.json"))
    before = {p.name: p.stat().st_mtime_ns for p in metrics}
    lock_before = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    script = (
        "from dvc.repo import Repo\n"
        "Repo('.').experiments.run(params=[\"evaluate.tasks.zeroshot.prompt='the sound of {}'\"])\n"
    )
    run([sys.executable, "-c", script], work, env)
    after = {p.name: p.stat().st_mtime_ns for p in metrics}
    assert {name for name in before if after[name] != before[name]} == {"evaluate_zeroshot.json",
                                                                        "import_external.json"}  # fmt: skip
    lock_after = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    changed = {name for name in lock_before if lock_before[name] != lock_after[name]}
    assert changed <= {"evaluate@zeroshot", "report", *ALWAYS} and "evaluate@zeroshot" in changed
    params = yaml.safe_load((work / "params.yaml").read_text())
    assert params["evaluate"]["tasks"]["zeroshot"]["prompt"] == "the sound of {}"
    run(["git", "checkout", "--", "."], work, env)  # back to the committed state for the next test


@pytest.fixture
def s3_server(monkeypatch):
    """An S3-compatible server on 127.0.0.1 (moto's server mode) with an empty bucket; yields its URL."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="blat-artifacts")
    yield url
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_push_clone_pull_then_repro_does_nothing(project, tmp_path, request, kind):
    """Share the reproduced pipeline through a remote: push, clone the git repo elsewhere, pull, and
    `dvc repro` there runs nothing but the always-changed scan (every output comes from the remote)."""
    work, env = project
    started = time.perf_counter()
    dvc = [sys.executable, "-m", "dvc"]
    name = f"shared_{kind}"
    if kind == "s3":
        endpoint = request.getfixturevalue("s3_server")
        env = {**env, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
        run(dvc + ["remote", "add", "-f", "-d", name, "s3://blat-artifacts/cache"], work, env)
        run(dvc + ["remote", "modify", name, "endpointurl", endpoint], work, env)
    else:
        run(dvc + ["remote", "add", "-f", "-d", name, str(tmp_path / "remote")], work, env)
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", f"remote {name}"], work, env)
    pushed = run(dvc + ["push"], work, env)
    assert re.search(r"\d+ files? pushed", pushed), pushed

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path, env)
    model = Path("data") / "models" / "blat_stage2" / "blat.safetensors"
    assert not (clone / model).exists()
    run(dvc + ["pull"], clone, env)
    assert (clone / model).read_bytes() == (work / model).read_bytes()
    assert _ran(run(dvc + ["repro"], clone, env)) == ALWAYS
    stages_listed = re.findall(r"^(\S[^:\n]*):\s*$", run(dvc + ["status"], clone, env), re.M)
    assert set(stages_listed) == ALWAYS  # "always changed", and nothing else
    if kind == "local":  # a declared model artifact: registered (a GTO tag), fetched from the remote anywhere
        run([str(Path(sys.executable).parent / "gto"), "register", "blat-stage2"], work, env)
        fetched = tmp_path / "fetched" / "blat_stage2"
        run(dvc + ["artifacts", "get", str(work), "blat-stage2", "-o", str(fetched)], tmp_path, env)
        assert (fetched / "blat.safetensors").read_bytes() == (work / model).read_bytes()
        declared = yaml.safe_load((work / "dvc.yaml").read_text())["artifacts"]
        assert {a["path"] for a in declared.values()} == {f"data/models/{m}" for m in MODELS}
        assert all(a["type"] == "model" and a["desc"] and a["labels"] for a in declared.values())
    print(f"{kind} remote round trip (push, clone, pull, repro): {time.perf_counter() - started:.1f} s")


@pytest.mark.slow
def test_changed_audio_folder_reruns_only_its_prepare(project, tmp_path_factory, tiny_corpus):
    """With dataset roots outside DVC (as real data is), replacing one audio file re-runs only its prepare."""
    work, env = project
    external = tmp_path_factory.mktemp("external") / "datasets"  # lives as long as the project: later tests use it
    shutil.copytree(tiny_corpus, external)
    params = relocated(yaml.safe_load((work / "params.yaml").read_text()), external)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = [sys.executable, "-m", "dvc", "repro", "prepare@esc50", "prepare@us8k"]
    assert _ran(run(dvc, work, env)) == {"scan", "prepare@esc50", "prepare@us8k"}
    assert _ran(run(dvc, work, env)) == {"scan"}

    target = sorted((external / "esc50" / "audio").glob("*.wav"))[0]
    samples, rate = sf.read(target, dtype="float32")
    sf.write(target, np.roll(samples, 1234), rate, subtype="PCM_16")  # same size, other content
    assert _ran(run(dvc, work, env)) == {"scan", "prepare@esc50"}


@pytest.mark.slow
def test_your_own_data_through_dvc_repro(project, tmp_path):
    """docs/your-data.md's path: a captions folder and a labels folder of real recordings in a user's layout, added
    by params only, train stage 2 (beside AudioCaps), are scored by retrieval (and retrieval fine-tuning), zero-shot
    and fine-tuning, and leave a fine-tuned model folder that `blat classify` uses; changing the evaluation-only set
    afterwards does not re-train stage 2."""
    from tests.helpers import real_audio

    real_audio.require()
    work, env = project
    mine = tmp_path / "my_data"
    real_audio.build_user_captions(mine / "my_sounds")
    labels = real_audio.build_user_labels(mine / "my_labels")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["prepare"]["datasets"]["my_sounds"] = {"recipe": "captions", "root": str(mine / "my_sounds"),
                                                  "metadata": "captions.csv"}  # fmt: skip
    params["prepare"]["datasets"]["my_labels"] = {"recipe": "labels", "root": str(mine / "my_labels"),
                                                  "metadata": "labels.tsv", "test_fraction": 0.34,
                                                  "val_fraction": 0.0}  # fmt: skip
    params["pretrain"]["real_datasets"] = ["audiocaps", "my_sounds"]
    tasks = params["evaluate"]["tasks"]
    tasks["retrieval"]["datasets"]["my_sounds"] = "test"
    tasks["retrieval_finetune"].update({"models": ["blat_stage1"], "targets": {"my_sounds": {"val": "val",
                                                                                           "test": "test"}}})
    tasks["zeroshot"]["datasets"].append("my_labels")
    tasks["finetune"].update({"models": ["blat_stage2"], "datasets": ["my_labels"]})
    params["finetuned"] = {"my_classifier": {"model": "blat_stage2", "dataset": "my_labels", "steps": 3,
                                             "batch_size": 4, "max_seconds": 2.0, "checkpoint_every": 2}}  # fmt: skip
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    targets = ["evaluate@retrieval", "evaluate@retrieval_finetune", "evaluate@zeroshot", "evaluate@finetune",
               "finetuned@my_classifier"]  # fmt: skip
    started = time.perf_counter()
    ran = _ran(run([sys.executable, "-m", "dvc", "repro", *targets], work, env))
    print(f"your data: dvc repro {' '.join(targets)} in {time.perf_counter() - started:.0f} s")
    assert {"prepare@my_sounds", "prepare@my_labels", "real_captions", "pretrain@stage2", "pretrain@realonly",
            *targets} <= ran  # fmt: skip
    assert not ran & {"make_demo", "tagger", "synthesize", "pretrain@stage1"}

    def metrics(name: str) -> dict:
        return json.loads((work / "metrics" / f"{name}.json").read_text())

    pool = json.loads((work / "data" / "real_captions.json").read_text())["datasets"]
    assert [d["name"] for d in pool] == ["audiocaps", "my_sounds"] and pool[1]["training_clips"] == 17
    retrieval = metrics("evaluate_retrieval")
    assert retrieval["retrieval"]["my_sounds"]["blat_stage2"]["clips"] == 5
    assert retrieval["retrieval_protocol"]["captions_per_clip"]["my_sounds"]["min"] >= 1
    assert retrieval["retrieval_coverage"]["my_sounds"]["splits"]["test"]["scored"] == 5
    tuned = metrics("evaluate_retrieval_finetune")["retrieval_finetune"]["my_sounds"]["blat_stage1"]
    assert 0 <= tuned["text_to_audio"]["R@1"]["mean"] <= 1
    zeroshot = metrics("evaluate_zeroshot")["zeroshot"]["my_labels"]["blat_stage2"]
    assert 0 <= zeroshot["accuracy"] <= 1 and zeroshot["chance_accuracy"] > 0
    finetune = metrics("evaluate_finetune")["finetune"]["my_labels"]["blat_stage2"]
    assert finetune["sets"] == 1 and 0 <= finetune["accuracy"]["mean"] <= 1
    kept = metrics("finetuned_my_classifier")["finetuned"]["my_classifier"]
    assert kept["train_clips"] + kept["test_clips"] == 19 and not kept["multi_label"]

    model = work / "data" / "finetuned" / "my_classifier"
    out = tmp_path / "classified.csv"
    said = run([sys.executable, "-m", "blat_core.app.cli", "classify", str(mine / "my_labels" / "wav"), "--model",
                str(model), "--out", str(out)], work, env)  # fmt: skip
    assert "by the fine-tuned single-label classifier" in said
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == labels["clips"] and {r["label"] for r in rows} <= set(labels["classes"])
    assert all(0 < float(r["score"]) <= 1 for r in rows)

    # An evaluation-only set changes: its prepare and the pool run, stage 2 does not (the pool file is unchanged).
    table = (mine / "my_labels" / "labels.tsv").read_text().splitlines()
    (mine / "my_labels" / "labels.tsv").write_text("\n".join(table[:-1]) + "\n")
    ran = _ran(run([sys.executable, "-m", "dvc", "repro", "pretrain@stage2"], work, env))
    assert ran == {"scan", "prepare@my_labels", "real_captions"}
