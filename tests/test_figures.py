"""The report's figures from fixture metrics: every figure file and its rows are written, report.md embeds
each, dvc.yaml declares each figure's rows as a plot, a figure's numbers are the metrics', drawing is
deterministic, and the per-class zero-shot details are right."""

from __future__ import annotations

import json
import shutil

import numpy as np
import yaml

from blat_core.eval.figures import FIGURES
from blat_core.eval.metrics.classification import per_class
from stages import report as report_stage
from tests.conftest import ROOT
from tests.test_report import FIXTURE

DETAILS = {"zeroshot": {"esc50": {
    "blat_stage1": {"per_class": {"dog": {"accuracy": 0.75, "clips": 4, "confused_with": "rain", "confused": 1},
                                  "rain": {"accuracy": 0.25, "clips": 4, "confused_with": "dog", "confused": 3}}},
    "blat_stage2": {"per_class": {"dog": {"accuracy": 1.0, "clips": 4, "confused_with": "", "confused": 0},
                                  "rain": {"accuracy": 0.5, "clips": 4, "confused_with": "dog", "confused": 2}}},
}}}  # fmt: skip


def write_fixture(folder):
    for stem, content in FIXTURE.items():
        (folder / f"{stem}.json").write_text(json.dumps(content))
    (folder / "details").mkdir()
    (folder / "details/evaluate_zeroshot.json").write_text(json.dumps(DETAILS))
    for stage, values in (("stage1", [0.2, 0.3, 0.35]), ("stage2", [0.4, 0.45])):
        curve = folder / f"pretrain_{stage}_live/plots/metrics/val/geometric_mean.tsv"
        curve.parent.mkdir(parents=True)
        curve.write_text("step\tgeometric_mean\n" + "".join(f"{10 * (i + 1)}\t{v}\n" for i, v in enumerate(values)))


def run_report(tmp_path, name="out"):
    metrics = tmp_path / "metrics"
    if not metrics.exists():
        metrics.mkdir()
        write_fixture(metrics)
    out = tmp_path / name
    report_stage.main(["--metrics", str(metrics), "--out", str(out / "report.md"), "--plots", str(out / "plots"),
                       "--figures", str(out / "figures")])  # fmt: skip
    return out


def test_every_figure_and_its_rows_are_written_and_embedded(tmp_path):
    out = run_report(tmp_path)
    text = (out / "report.md").read_text()
    assert len(FIGURES) >= 5
    for spec in FIGURES:
        png = (out / "figures" / f"{spec.name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000, spec.name
        assert f"](figures/{spec.name}.png)" in text, spec.name
        rows = json.loads((out / "plots" / f"{spec.name}.json").read_text())
        assert rows and all(spec.value in r and r["label"] for r in rows), spec.name
    retrieval = json.loads((out / "plots/retrieval.json").read_text())
    assert {"dataset": "clotho", "direction": "text_to_audio", "model": "blat_stage1", "k": 1, "recall": 10.0,
            "label": "clotho · text_to_audio · blat_stage1 · R@1"} in retrieval  # fmt: skip
    curves = json.loads((out / "plots/pretrain_curves.json").read_text())
    assert [(r["model"], r["step"]) for r in curves][:4] == [("blat_stage1", 10), ("blat_stage1", 20),
                                                             ("blat_stage1", 30), ("blat_stage2", 10)]  # fmt: skip
    classes = json.loads((out / "plots/esc50_per_class.json").read_text())
    assert {"model": "blat_stage1", "class": "rain", "accuracy": 25.0, "confused_with": "dog",
            "label": "blat_stage1 · rain · dog"} in classes  # fmt: skip


def test_figures_are_drawn_the_same_twice(tmp_path):
    first, second = run_report(tmp_path, "a"), run_report(tmp_path, "b")
    for spec in FIGURES:
        name = f"figures/{spec.name}.png"
        assert (first / name).read_bytes() == (second / name).read_bytes(), spec.name


def test_a_figure_without_its_metrics_still_draws(tmp_path):
    (tmp_path / "metrics").mkdir()
    out = run_report(tmp_path)
    assert all((out / "figures" / f"{spec.name}.png").is_file() for spec in FIGURES)


def test_dvc_yaml_declares_each_figures_rows_as_a_plot():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    declared = {next(iter(p)): p[next(iter(p))] for p in stage["plots"]}
    for spec in FIGURES:
        plot = declared[f"metrics/plots/{spec.name}.json"]
        assert plot["cache"] is False and spec.value in (plot["x"], plot["y"]), spec.name
    assert declared["metrics/figures"]["cache"] is False


def test_per_class_accuracy_and_confusions():
    classes = ["dog", "rain", "bell"]
    targets = np.eye(3)[[0, 0, 0, 1, 1, 2]]
    predicted = [0, 1, 0, 0, 0, 2]
    scores = np.eye(3)[predicted]
    table = per_class(classes, targets, scores)
    assert table["dog"] == {"accuracy": 2 / 3, "clips": 3, "confused_with": "rain", "confused": 1}
    assert table["rain"] == {"accuracy": 0.0, "clips": 2, "confused_with": "dog", "confused": 2}
    assert table["bell"] == {"accuracy": 1.0, "clips": 1, "confused_with": "", "confused": 0}


def test_dvc_plots_show_renders_every_figures_rows(tmp_path):
    """`dvc plots show --json` over the rows the report wrote, with dvc.yaml's own plot definitions (a row
    set with mixed fields once made DVC fail with "argument of type 'NoneType' is not iterable")."""
    import subprocess
    import sys

    out = run_report(tmp_path)
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    shutil.copytree(out / "plots", repo / "metrics/plots")
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    plots = [p for p in stage["plots"] if next(iter(p)).endswith(".json")]
    for plot in plots:
        next(iter(plot.values())).pop("cache", None)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    done = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=repo, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr
    shown = json.loads(done.stdout)
    assert not shown.get("errors"), shown.get("errors")
    for spec in FIGURES:
        assert shown["data"][f"metrics/plots/{spec.name}.json"], spec.name
