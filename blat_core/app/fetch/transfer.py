"""Resumable, checksum-verified downloads and archive extraction for `blat fetch`.

Nothing a server sends is trusted: a download stops at its catalogued bound (`Remote.max_bytes`) and when it
trickles slower than MIN_RATE for a minute; a file without a published checksum is checked by its content
(`Remote.header`, `Remote.min_rows`: a captive portal's HTML page is not a CSV). An archive is listed before
it is unpacked (its declared size against `Extract.max_unpacked`, its compression ratio, the free disk),
unpacked into a staging folder where links and special members are refused and setuid/setgid/world-writable
bits dropped, and only then moved into the root, entry by entry, never over a file it does not own.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import shutil
import stat
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
MIN_RATE = 10_000  # bytes/s, averaged over RATE_WINDOW: a slower transfer is dropped (and resumed next try)
RATE_WINDOW = 60.0  # seconds
MAX_RATIO = 20  # declared unpacked bytes per archive byte: audio never compresses like this; bombs do


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
            if _get(url, part, transfer, timeout, progress, remote.name, remote.max_bytes):
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
    if remote.md5 is None:
        check_content(remote, part)
    else:
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


def _get(url: str, part: Path, transfer: Transfer, timeout: float, progress: bool, name: str,
         max_bytes: int) -> bool:  # fmt: skip
    """One request, appending to `part` from its current size; True when the file is complete. Never writes
    more than `max_bytes` in all (FetchError, the part deleted); a transfer slower than MIN_RATE over
    RATE_WINDOW is dropped as an interruption (the part is kept for the next try)."""
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
        total = have + int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise FetchError(f"{name}: the server announces {total:,} bytes, more than the {max_bytes:,} this file "
                             "can have (its catalogued bound): refusing it (a --mirror with another file?)")
        size, window_start, window_bytes = have, time.monotonic(), 0
        with part.open(mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=name,
                                          disable=not progress, mininterval=1.0) as bar:  # fmt: skip
            while block := response.read1(CHUNK):
                size += len(block)
                if size > max_bytes:
                    out.close()
                    part.unlink()
                    raise FetchError(f"{name}: the server sent more than {max_bytes:,} bytes, the most this file "
                                     "can have (its catalogued bound): stopped there, the partial file deleted")
                out.write(block)
                transfer.received += len(block)
                bar.update(len(block))
                window_bytes += len(block)
                if time.monotonic() - window_start >= RATE_WINDOW:
                    if window_bytes < MIN_RATE * RATE_WINDOW:
                        raise http.client.HTTPException(f"slower than {MIN_RATE // 1000} kB/s for a minute")
                    window_start, window_bytes = time.monotonic(), 0
    size = part.stat().st_size
    if total is not None and size < total:
        raise http.client.IncompleteRead(b"", total - size)
    return True


def check_content(remote: Remote, path: Path) -> None:
    """A file published without a checksum must at least look like itself: its first line starts with
    `remote.header` and it has `remote.min_rows` lines after it; otherwise it is deleted and a FetchError says
    what arrived instead (an HTML page from a captive portal or an error page, typically)."""
    if remote.header is None and not remote.min_rows:
        return
    with path.open("rb") as handle:
        head = handle.read(4096)
        rows = head.count(b"\n") + sum(block.count(b"\n") for block in iter(lambda: handle.read(CHUNK), b""))
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").strip()
    problem = ""
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        problem = "an HTML page, not the published file (a captive portal, a login or an error page?)"
    elif remote.header is not None and not first.startswith(remote.header):
        problem = f"its first line is {first[:80]!r}, the published file's starts with {remote.header!r}"
    elif rows - 1 < remote.min_rows:
        problem = f"{max(rows - 1, 0)} rows, the published file has at least {remote.min_rows:,}"
    if problem:
        path.unlink()
        raise FetchError(f"{remote.name}: what arrived is {problem}; it was deleted. Check the network (open the "
                         "address in a browser) and run the command again")  # fmt: skip


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


def declared_size(archive: Path) -> int:
    """The total unpacked size an archive's own listing declares (its members' headers), read before any
    member is written; tar and zip members cannot write more than they declare."""
    name = archive.name
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tar:
            return sum(member.size for member in tar.getmembers())
    if name.endswith(".7z"):
        import py7zr

        with py7zr.SevenZipFile(archive) as seven:
            return sum(entry.uncompressed or 0 for entry in seven.list())
    with zipfile.ZipFile(archive) as zipped:
        return sum(info.file_size for info in zipped.infolist())


def _check_tar_members(tar: tarfile.TarFile, into: Path) -> None:
    """Refuse link and special members outright, and any name that would land outside `into` (safety must not
    depend on the interpreter: the `data` filter's realpath checks were bypassable on some 3.11 patch releases)."""
    base = os.path.realpath(into)
    for member in tar.getmembers():
        if member.issym() or member.islnk():
            raise FetchError(f"member {member.name!r} is a link (to {member.linkname!r}); published datasets hold "
                             "none: refusing the archive")  # fmt: skip
        if not (member.isfile() or member.isdir()):
            raise FetchError(f"member {member.name!r} is a device, FIFO or other special file: refusing the archive")
        target = os.path.realpath(os.path.join(base, member.name))
        if os.path.isabs(member.name) or os.path.commonpath([base, target]) != base:
            raise FetchError(f"member {member.name!r} would be written outside the extraction folder: refusing")


def _unpack(archive: Path, into: Path) -> None:
    name = archive.name
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tar:
                _check_tar_members(tar, into)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(into, filter="data")  # a second line of defence where the interpreter has it
                else:  # pragma: no cover  (Python 3.11 before 3.11.4: members were checked above)
                    tar.extractall(into)
        elif name.endswith(".7z"):
            import py7zr

            with py7zr.SevenZipFile(archive) as seven:
                seven.extractall(into)
        else:
            with zipfile.ZipFile(archive) as zipped:
                bad = zipped.testzip()
                if bad is not None:
                    raise FetchError(f"{archive.name}: member {bad} is corrupt (CRC); delete the archive and run again")
                zipped.extractall(into)  # zipfile drops absolute paths and `..`, and makes no links
    except FetchError as error:
        said = str(error)
        raise FetchError(said if said.startswith(archive.name) else f"{archive.name}: {said}") from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise FetchError(f"{archive.name}: the disk filled up while extracting (the archive itself is intact, "
                             "kept in .downloads/): free some space and run the same command again") from None
        raise FetchError(f"{archive.name}: extracting it failed ({error}); the archive is kept in .downloads/: fix "
                         "the cause and run again") from None  # fmt: skip
    except Exception as error:  # each archive library has its own errors for truncated or corrupt files
        raise FetchError(f"{archive.name}: cannot be extracted ({type(error).__name__}: {error}); delete it from "
                         ".downloads/ and run again to download it anew") from None  # fmt: skip
    _sanitise(into, archive.name)


def _sanitise(folder: Path, archive: str) -> None:
    """After unpacking (any format): no symlinks or special files anywhere, nothing resolving outside the
    folder, and no setuid/setgid/sticky or group/world-writable bits (py7zr restores the stored modes)."""
    base = os.path.realpath(folder)
    for top, subfolders, names in os.walk(folder):
        for name in subfolders + names:
            path = os.path.join(top, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise FetchError(f"{archive}: member {os.path.relpath(path, folder)!r} is a link; published datasets "
                                 "hold none: refusing the archive")  # fmt: skip
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise FetchError(f"{archive}: member {os.path.relpath(path, folder)!r} is a special file: refusing")
            if os.path.commonpath([base, os.path.realpath(path)]) != base:
                raise FetchError(f"{archive}: member {os.path.relpath(path, folder)!r} resolves outside: refusing")
            mode = stat.S_IMODE(info.st_mode)
            safe = mode & ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH)
            if stat.S_ISDIR(info.st_mode):
                safe |= stat.S_IRWXU  # a folder stored read-only must stay enterable and removable
            if safe != mode:
                os.chmod(path, safe)


def _check_before_unpacking(step: Extract, archive: Path, scratch: Path) -> int:
    """The archive's declared size must fit its catalogued bound, a plausible compression ratio and the disk."""
    try:
        declared = declared_size(archive)
    except Exception as error:  # each archive library has its own errors for truncated or corrupt files
        raise FetchError(f"{archive.name}: cannot be extracted ({type(error).__name__}: {error}); delete it from "
                         ".downloads/ and run again to download it anew") from None  # fmt: skip
    stored = max(archive.stat().st_size, 1)
    if declared > step.max_unpacked:
        raise FetchError(f"{archive.name} declares {declared:,} bytes unpacked, more than the {step.max_unpacked:,} "
                         "the published archive holds: refusing to extract it (another or a malicious file?)")
    if declared > step.max_ratio * stored:
        raise FetchError(f"{archive.name} declares {declared:,} bytes unpacked from {stored:,} "
                         f"({declared / stored:.0f}× compression, published audio archives stay under "
                         f"{step.max_ratio}×): refusing to extract it (an archive bomb?)")
    free = shutil.disk_usage(scratch).free
    if declared > free:
        raise FetchError(f"extracting {archive.name} needs {declared / 1e9:.1f} GB and the disk of {scratch} has "
                         f"{free / 1e9:.1f} GB free: free some space and run again (the archive is kept)")  # fmt: skip
    return declared


def extract(step: Extract, downloads: Path, root: Path) -> bool:
    """Unpack one archive into the root (skipped when its marker says it is done); True when it ran.

    Unpacked into a staging folder, then moved entry by entry. Every entry this archive puts in the root is
    recorded first (`<archive>.owns`); an entry that already exists is replaced only when that record says
    this archive made it (an interrupted run), else the whole extraction is refused before anything moves:
    another dataset's `audio/` or the user's own files are never removed."""
    marker = downloads / f"{step.parts[-1]}.extracted"
    if marker.is_file():
        return False
    scratch = downloads / f"extracting-{step.parts[-1]}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        archive = _join_parts([downloads / p for p in step.parts], scratch)
        _check_before_unpacking(step, archive, scratch)
        unpacked = scratch / "content"
        _unpack(archive, unpacked)
        top = unpacked
        if step.strip:
            entries = list(unpacked.iterdir())
            if len(entries) != 1 or not entries[0].is_dir():
                raise FetchError(f"{step.parts[-1]}: expected one top folder, found {sorted(e.name for e in entries)}")
            top = entries[0]
        _move_in(sorted(top.iterdir()), root / step.into, downloads, step.parts[-1])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    marker.write_text("")
    return True


def _move_in(entries: list[Path], target: Path, downloads: Path, archive: str) -> None:
    owns_file = downloads / f"{archive}.owns"
    try:
        owned = set(json.loads(owns_file.read_text())) if owns_file.is_file() else set()
    except ValueError:
        owned = set()
    target.mkdir(parents=True, exist_ok=True)
    names = [entry.name for entry in entries]
    reserved = {downloads.name} if os.path.realpath(target) == os.path.realpath(downloads.parent) else set()
    for name in names:
        destination = target / name
        if name in reserved:
            raise FetchError(f"{archive}: it holds a top-level {name!r}, the folder where fetch keeps its downloads: "
                             "refusing to extract it (not the published archive?)")  # fmt: skip
        if (destination.exists() or destination.is_symlink()) and name not in owned:
            raise FetchError(f"{archive}: {destination} already exists and was not extracted from this archive; "
                             "nothing was changed. Fetch each dataset into its own --root (several datasets have an "
                             f"audio/ folder), or move {destination} away and run again")  # fmt: skip
    owns_file.write_text(json.dumps(sorted(owned | set(names))))
    for entry in entries:
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)  # this archive's own, left by an extraction interrupted before its marker
        elif destination.exists() or destination.is_symlink():
            destination.unlink()
        os.replace(entry, destination)
