"""`blat fetch DATASET --root DIR`: download a public dataset into the layout the paper profile expects
(see blat_core.app.fetch and docs/real-data.md)."""

from __future__ import annotations

import os
from pathlib import Path

from blat_core.app.cli.common import UsageError


def add_parser(add, audio_options) -> None:
    from blat_core.app.fetch import SOURCES

    sub = add("fetch", run, "download a public dataset (resumable, checksums verified) and lay it out as "
              "params.paper.yaml expects; for the YouTube sets, their metadata and the list of clips "
              "to fetch")  # fmt: skip
    sub.add_argument("dataset", choices=sorted(SOURCES), help="which dataset")
    sub.add_argument("--root", required=True,
                     help="the dataset's folder (created; re-runs resume and skip what is done)")  # fmt: skip
    sub.add_argument(
        "--mirror", help="base address serving the same file names (a local copy) instead of the publishers'"
    )
    sub.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from blat_core.app.fetch import SOURCES, FetchError, fetch

    root = Path(args.root).expanduser()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--root {root} is a file, not a folder: give the folder the dataset should go in")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--root {root} cannot be created ({error.strerror}): choose a folder you can write") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"--root {root} is not writable: choose a folder you can write, or fix its permissions")
    try:
        report = fetch(args.dataset, root, mirror=args.mirror, progress=not args.no_progress)
    except FetchError as error:
        raise UsageError(str(error)) from None
    source = SOURCES[args.dataset]
    done = ", ".join(f"{k}: {len(v)}" for k, v in (("downloaded", report.downloaded), ("already there", report.skipped),
                                                  ("extracted", report.extracted)) if v)  # fmt: skip
    print(f"{args.dataset} is in {root} ({done or 'nothing to do'})")
    if report.id_list is not None:
        print(f"clips to fetch from YouTube: {report.id_list}")
    if source.note:
        print(source.note)
    print(f"params: prepare.datasets.{args.dataset}: " + source.params.replace("DIR", str(root.resolve())))
    return 0
