"""benchmarks/gpu_check.sh --dry-run: the GPU check's code runs end to end at toy sizes on the CPU and
writes every figure, so the script is ready to run unchanged on a GPU machine."""

from __future__ import annotations

import json
import subprocess

import torch

from tests.conftest import ROOT


def test_gpu_check_dry_run_writes_every_figure(tmp_path):
    result = subprocess.run([str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check_cpu_dry_run.json").read_text())
    for mode in ("eager", "compiled"):
        assert report["pretrain"][mode]["pairs_per_s"] > 0 and 0 <= report["pretrain"][mode]["data_wait"] <= 1
    assert report["pretrain"]["compiled_over_eager"] > 0
    for figure in ("loader", "features", "synthesis", "captioner"):
        assert report[figure]["clips_per_s"] > 0, figure
    # The GPU tests pass where CUDA is, and are skipped (not failed) where it is not: either way at least 5 ran.
    outcome = "passed" if torch.cuda.is_available() else "skipped"
    gpu = report["gpu_tests"]
    assert gpu["rc"] == 0 and gpu.get(outcome, 0) >= 5 and not gpu.get("failed") and not gpu.get("error"), gpu
    lines = result.stdout.strip().splitlines()
    assert [line.split(" ")[0] for line in lines[-7:]] == [
        "pretrain", "loader:", "features:", "synthesis", "captioner", "gpu", "wrote",
    ]  # fmt: skip
