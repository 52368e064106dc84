"""Resumable, checksum-verified downloads and archive extraction for `blat fetch`."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from blat_core.app.fetch.catalogue import Extract, FetchError, Remote

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Transfer:
    """What a download did (the tests read it): bytes received, and the offsets it resumed from."""

    received: int = 0
    resumed_from: list[int] = field(default_factory=list)


def download(remote: Remote, dest: Path, *, url: str | None = None, tries: int = 3, timeout: float = 60.0,
             progress: bool = True) -> Transfer:  # fmt: skip
    """Download `remote` to `dest`, resuming `dest.part`; verify its md5; then rename. A complete `dest` is
    kept as it is (it was verified before it got its name)."""
    transfer = Transfer()
    if dest.is_file():
        return transfer
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    url = url or remote.url
    for attempt in range(1, tries + 1):
        try:
            if _get(url, part, transfer, timeout, progress, remote.name):
                break
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:  # resets, timeouts
            if isinstance(error, urllib.error.HTTPError) and error.code in (403, 404, 410):
                raise FetchError(f"{remote.name}: {url} answered {error.code} {error.reason}; the file moved or "
                                 "the address is wrong (--mirror?)") from None  # fmt: skip
            have = part.stat().st_size if part.exists() else 0
            log.warning("%s: interrupted after %d bytes (%s); try %d of %d", remote.name, have, error, attempt, tries)
            if attempt == tries:
                raise FetchError(f"{remote.name}: download interrupted {tries} times ({error}); {have} bytes are kept "
                                 f"in {part}: run the same command again to resume") from None  # fmt: skip
            time.sleep(min(2.0 * attempt, 10.0) if not os.environ.get("BLAT_FETCH_NO_WAIT") else 0)
    if remote.md5 is not None:
        found = file_md5(part)
        if found != remote.md5:
            size = part.stat().st_size
            part.unlink()
            raise FetchError(
                f"{remote.name}: checksum mismatch (md5 {found}, published {remote.md5}, {size} bytes); the file "
                "was deleted. Run the command again to download it anew; if it fails again, the server sends "
                "another file than the published one (a proxy, a moved record, or a --mirror holding another version)"
            )
    os.replace(part, dest)
    return transfer


def _get(url: str, part: Path, transfer: Transfer, timeout: float, progress: bool, name: str) -> bool:
    """One request, appending to `part` from its current size; True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "blat-fetch/1", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the range starts at the end: nothing left to send
            return True
        raise
    with response:
        if have and response.status == 206:
            transfer.resumed_from.append(have)
            mode = "ab"
        else:  # 200: the server ignores ranges, start over
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        with part.open(mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=name,
                                          disable=not progress, mininterval=1.0) as bar:  # fmt: skip
            while block := response.read(CHUNK):
                out.write(block)
                transfer.received += len(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size < total:
        raise http.client.IncompleteRead(b"", total - size)
    return True


# ---------------------------------------------------------------- extraction
def _join_parts(parts: list[Path], scratch: Path) -> Path:
    """A multi-part zip (`x.z01 … x.zip`) as one zip, by `zip -s 0` (Zenodo's instructions for FSD50K)."""
    if len(parts) == 1:
        return parts[0]
    if shutil.which("zip") is None:
        raise FetchError(f"joining the multi-part archive {parts[-1].name} needs the `zip` program "
                         "(Debian/Ubuntu: sudo apt-get install zip)")  # fmt: skip
    joined = scratch / f"joined-{parts[-1].name}"
    command = ["zip", "-q", "-s", "0", str(parts[-1]), "--out", str(joined)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise FetchError(f"{parts[-1].name}: joining its parts failed (zip -s 0: {said}); a part may be "
                         "incomplete: delete it from .downloads/ and run again")  # fmt: skip
    return joined


def _unpack(archive: Path, into: Path) -> None:
    name = archive.name
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")  # refuses absolute paths, `..`, links out, devices
        elif name.endswith(".7z"):
            import py7zr

            with py7zr.SevenZipFile(archive) as seven:
                seven.extractall(into)
        else:
            with zipfile.ZipFile(archive) as zipped:
                bad = zipped.testzip()
                if bad is not None:
                    raise FetchError(f"{archive.name}: member {bad} is corrupt (CRC); delete the archive and run again")
                zipped.extractall(into)  # zipfile drops absolute paths and `..`
    except FetchError:
        raise
    except Exception as error:  # each archive library has its own errors for truncated or corrupt files
        raise FetchError(f"{archive.name}: cannot be extracted ({type(error).__name__}: {error}); delete it from "
                         ".downloads/ and run again to download it anew") from None  # fmt: skip


def extract(step: Extract, downloads: Path, root: Path) -> bool:
    """Unpack one archive into the root (skipped when its marker says it is done); True when it ran."""
    marker = downloads / f"{step.parts[-1]}.extracted"
    if marker.is_file():
        return False
    scratch = downloads / f"extracting-{step.parts[-1]}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        archive = _join_parts([downloads / p for p in step.parts], scratch)
        unpacked = scratch / "content"
        _unpack(archive, unpacked)
        top = unpacked
        if step.strip:
            entries = list(unpacked.iterdir())
            if len(entries) != 1 or not entries[0].is_dir():
                raise FetchError(f"{step.parts[-1]}: expected one top folder, found {sorted(e.name for e in entries)}")
            top = entries[0]
        target = root / step.into
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(top.iterdir()):
            destination = target / entry.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)  # left by an extraction that was interrupted before its marker
            elif destination.exists() or destination.is_symlink():
                destination.unlink()
            os.replace(entry, destination)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    marker.write_text("")
    return True
