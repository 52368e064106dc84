"""`blat doctor`: check this machine and project (see blat_core.app.doctor)."""

from __future__ import annotations

from pathlib import Path


def add_parser(add, audio_options) -> None:
    sub = add("doctor", run, "check this machine and project: Java, dataset roots, checkpoints, text "
              "encoder, GPU, disk, and what each stage needs")  # fmt: skip
    sub.add_argument("--params", default="params.yaml", help="params file to check (default params.yaml)")
    sub.add_argument("--project", default=".", help="project root (default: the current folder)")
    sub.add_argument("--strict", action="store_true",
                     help="exit 1 when any check fails (a torchaudio that does not load always exits 1)")  # fmt: skip


def run(args) -> int:
    from blat_core.app.doctor import run_checks

    failures = run_checks(Path(args.params), Path(args.project))
    # A broken torch/torchaudio pair stops every stage: exit 1 for it even without --strict.
    return 1 if failures and (args.strict or "torchaudio" in failures) else 0
