"""Benchmark: `dvc status` when a stage depends on a dataset folder vs on scan's fingerprint.

    python benchmarks/dvc_status.py [--files 100000]

Makes a throw-away git + DVC project beside a dataset root of `--files` small audio files plus its
metadata CSV, and two stages reading it: `folder_dep` declares the root as a dep (what a `meta` folder
holding audio used to cost), `fingerprint_dep` declares only a fingerprint JSON (what `prepare@<dataset>`
does now). Times `dvc repro` of each (DVC hashes a folder dep's every file) and then `dvc status` of
each, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    dvc = [sys.executable, "-m", "dvc"]
    with tempfile.TemporaryDirectory() as tmp:
        project, root = Path(tmp, "project"), Path(tmp, "dataset")
        audio = root / "audio"
        started = time.perf_counter()
        for i in range(args.files):
            folder = audio / f"part{i // 10_000:02d}"
            if i % 10_000 == 0:
                folder.mkdir(parents=True)
            (folder / f"Y{i:08d}.wav").write_bytes(os.urandom(512))
        (root / "segments.csv").write_text("YTID\n" + "".join(f"{i:08d}\n" for i in range(args.files)))
        print(f"made {args.files:,} files in {time.perf_counter() - started:.1f} s")
        project.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        subprocess.run([*dvc, "init", "-q"], cwd=project, check=True)
        (project / "fingerprint.json").write_text(json.dumps({"meta": "digest", "audio": "listing digest"}))
        (project / "dvc.yaml").write_text(
            "stages:\n"
            f"  folder_dep:\n    cmd: echo done > folder.txt\n    deps: [{root}]\n    outs: [folder.txt]\n"
            "  fingerprint_dep:\n    cmd: echo done > fp.txt\n    deps: [fingerprint.json]\n    outs: [fp.txt]\n"
        )
        repro_folder = timed([*dvc, "repro", "folder_dep"], project)
        repro_fingerprint = timed([*dvc, "repro", "fingerprint_dep"], project)
        status_folder = min(timed([*dvc, "status", "folder_dep"], project) for _ in range(2))
        status_fingerprint = min(timed([*dvc, "status", "fingerprint_dep"], project) for _ in range(2))
    print(f"dvc repro, first time: folder dep {repro_folder:.1f} s, fingerprint dep {repro_fingerprint:.1f} s")
    print(f"dvc status (best of 2): folder dep {status_folder:.2f} s, fingerprint dep {status_fingerprint:.2f} s "
          f"({status_folder / status_fingerprint:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
