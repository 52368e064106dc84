"""`blat fetch <dataset> --root DIR`: download a public dataset into the layout params.paper.yaml expects.

Archives download into `DIR/.downloads/` as `<name>.part` and resume with an HTTP Range request after an
interruption (three tries per run, and every later run); each is checked against its published md5
before it takes its final name, so a complete file is never fetched twice. Archives are then extracted
(multi-part zips joined first, as Zenodo's FSD50K notes say, with `zip -s 0`) into a scratch folder and
moved into place; a marker records each finished extraction, so a re-run skips it.

The YouTube-sourced sets (AudioSet, AudioCaps, VGGSound) have no archive: `fetch` downloads their public
metadata and writes `download_list.csv` (YouTube id, segment start and end, split, the file name the
paper profile's pattern expects) for a YouTube downloader; docs/real-data.md shows the route.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from blat_core.app.fetch.catalogue import (  # noqa: F401  (the catalogue's names, for callers and tests)
    CLOTHO,
    ESC50_COMMIT,
    FSD50K_PARTS,
    SOURCES,
    Extract,
    FetchError,
    Remote,
    Source,
)
from blat_core.app.fetch.transfer import Transfer, check_content, download, extract

log = logging.getLogger(__name__)


@dataclass
class FetchReport:
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    transfers: dict[str, Transfer] = field(default_factory=dict)
    id_list: Path | None = None


def fetch(dataset: str, root: Path, *, mirror: str | None = None, source: Source | None = None,
          progress: bool = True, tries: int = 3) -> FetchReport:  # fmt: skip
    """Download and lay out `dataset` under `root`. `mirror`: a base address serving the same file names
    (a local copy, or the tests' server) instead of the publishers'."""
    if source is None:
        if dataset not in SOURCES:
            raise FetchError(f"unknown dataset {dataset!r}; fetch knows: {', '.join(SOURCES)}")
        source = SOURCES[dataset]
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / ".downloads"
    report = FetchReport()
    extracted = {part for step in source.extract if (downloads / f"{step.parts[-1]}.extracted").is_file()
                 for part in step.parts}  # fmt: skip
    archives = {part for step in source.extract for part in step.parts}
    for remote in source.remotes:
        dest = (downloads if remote.name in archives else root) / remote.name
        if dest.is_file() and remote.md5 is None:  # kept by an earlier run or version: check it again
            try:
                check_content(remote, dest)
            except FetchError as error:
                log.warning("downloading %s again: %s", remote.name, error)
        if dest.is_file() or remote.name in extracted:  # an archive may be deleted once extracted
            report.skipped.append(remote.name)
            continue
        url = f"{mirror.rstrip('/')}/{remote.name.rpartition('/')[2]}" if mirror else None
        if remote.md5 is None:
            log.warning("%s: the publisher gives no checksum; it is checked by reading it instead", remote.name)
        report.transfers[remote.name] = download(remote, dest, url=url, tries=tries, progress=progress)
        report.downloaded.append(remote.name)
    for step in source.extract:
        if extract(step, downloads, root):
            report.extracted.append(step.parts[-1])
    missing = [p for p in source.expect if not (root / p).exists()]
    if missing:
        raise FetchError(f"{dataset}: after extraction {', '.join(missing)} is missing under {root}; the archives "
                         "do not have the published layout (a --mirror with another version?)")  # fmt: skip
    from blat_core.data.sources import list_audio

    for folder, wanted in source.counts:
        found = len(list_audio(root / folder)[0])
        if found != wanted:
            raise FetchError(f"{dataset}: {root / folder} holds {found} audio files, the published dataset {wanted}; "
                             "delete .downloads/*.extracted and run again, or check the archives")  # fmt: skip
    if source.id_list is not None:
        rows = source.id_list(root)
        if not rows:
            raise FetchError(f"{dataset}: its metadata lists no clips to download (the CSVs under {root} hold no "
                             "usable rows): delete them and run again")  # fmt: skip
        report.id_list = root / "download_list.csv"
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["youtube_id", "start_seconds", "end_seconds", "split", "file"],
                                lineterminator="\n")  # fmt: skip
        writer.writeheader()
        writer.writerows(rows)
        tmp = report.id_list.with_suffix(".tmp")
        tmp.write_text(buffer.getvalue())
        os.replace(tmp, report.id_list)
    return report
