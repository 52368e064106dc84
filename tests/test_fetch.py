"""`blat fetch` end to end against a local HTTP server on 127.0.0.1 serving small archives with the real
names and structure: extraction into the expected layout, resume after an interrupted download,
checksum failures, corrupt archives, re-runs that skip what is done, and the YouTube sets' id lists."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import py7zr
import pytest
import soundfile as sf

from blat_core.app import fetch as fetching
from blat_core.app.cli import main as blat
from blat_core.app.fetch import SOURCES, FetchError, fetch


class Server:
    """Serves `files` (name -> bytes) on 127.0.0.1 with Range support. `cut[name] = n`: the next response
    for that name stops after n bytes and drops the connection (an interrupted download)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.endless: dict[str, int] = {}  # name -> bytes sent with no Content-Length (an "endless" body)
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("?")[0]
                server.requests.append((name, self.headers.get("Range")))
                if name in server.endless:
                    self.send_response(200)
                    self.end_headers()
                    try:
                        for _ in range(server.endless[name] // 65536):
                            self.wfile.write(b"\0" * 65536)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[name], 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut:
                    body = body[: server.cut.pop(name)]
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    monkeypatch.setenv("BLAT_FETCH_NO_WAIT", "1")


@pytest.fixture
def few_rows(monkeypatch):
    """The YouTube sets' CSV checks with a minimum of 1 row (the tests serve a few rows, not the published 20K+)."""
    for name in ("audioset", "audiocaps", "vggsound"):
        source = SOURCES[name]
        remotes = tuple(dataclasses.replace(r, min_rows=min(r.min_rows, 1)) for r in source.remotes)
        monkeypatch.setitem(SOURCES, name, dataclasses.replace(source, remotes=remotes))


def wav(seconds: float = 0.2, seed: int = 0) -> bytes:
    """Noise, so that archives do not compress it away (the multi-part zip needs size)."""
    buffer = io.BytesIO()
    samples = np.random.default_rng(seed).uniform(-0.5, 0.5, int(16000 * seconds)).astype(np.float32)
    sf.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def served(server: Server, dataset: str, files: dict[str, bytes], counts=None) -> fetching.Source:
    """The real source of `dataset` with the test files' checksums (same names), served by `server`."""
    source = SOURCES[dataset]
    remotes = tuple(dataclasses.replace(r, md5=md5(files[r.name.rpartition("/")[2]])) for r in source.remotes)
    server.files.update(files)
    return dataclasses.replace(source, remotes=remotes, counts=counts if counts is not None else ())


def esc50_files() -> dict[str, bytes]:
    top = f"ESC-50-{fetching.ESC50_COMMIT}"
    csv = "filename,fold,target,category,esc10,src_file,take\n1-100032-A-0.wav,1,0,dog,True,100032,A\n"
    members = {f"{top}/meta/esc50.csv": csv.encode(), f"{top}/README.md": b"ESC-50"}
    members.update({f"{top}/audio/1-10003{i}-A-0.wav": wav(seed=i) for i in range(3)})
    return {"ESC-50-master.zip": zip_bytes(members)}


def us8k_files() -> dict[str, bytes]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        header = b"slice_file_name,fsID,start,end,salience,fold,classID,class\n"
        members = {"UrbanSound8K/metadata/UrbanSound8K.csv": header}
        members.update({f"UrbanSound8K/audio/fold{f}/{f}00-3-0-0.wav": wav(seed=f) for f in (1, 10)})
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {"UrbanSound8K.tar.gz": buffer.getvalue()}


def clotho_files(tmp: Path) -> dict[str, bytes]:
    files = {}
    for split in fetching.CLOTHO:
        archive = tmp / f"clotho_audio_{split}.7z"
        with py7zr.SevenZipFile(archive, "w") as seven:
            seven.writestr(wav(seed=1), f"{split}/Rain on a roof, heavy (2).wav")
            seven.writestr(wav(seed=2), f"{split}/Kitchen & cups.wav")
        files[archive.name] = archive.read_bytes()
        files[f"clotho_captions_{split}.csv"] = b"file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
        files[f"clotho_metadata_{split}.csv"] = "file_name,keywords\nCaf\xe9.wav,x\n".encode("latin-1")
    return files


def fsd50k_files(tmp: Path) -> dict[str, bytes]:
    """FSD50K's audio as real multi-part zips (`zip -s`), as on Zenodo: x.z01, x.z02, …, x.zip."""
    files = {}
    for stem, clips in (("FSD50K.dev_audio", 6), ("FSD50K.eval_audio", 3)):
        folder = tmp / stem
        folder.mkdir()
        for i in range(clips):
            (folder / f"{1000 + i}.wav").write_bytes(wav(seconds=1.0, seed=i))
        subprocess.run(["zip", "-q", "-r", "-s", "64k", f"{stem}.zip", stem], cwd=tmp, check=True)
        for part in sorted(tmp.glob(f"{stem}.z*")):
            files[part.name] = part.read_bytes()
    gt = {f"FSD50K.ground_truth/{n}.csv": b"fname,labels,mids\n" for n in ("dev", "eval", "vocabulary")}
    files["FSD50K.ground_truth.zip"] = zip_bytes(gt)
    files["FSD50K.metadata.zip"] = zip_bytes({"FSD50K.metadata/dev_clips_info_FSD50K.json": b"{}"})
    return files


def fsd50k_source(server: Server, files: dict[str, bytes]) -> fetching.Source:
    """FSD50K's source with as many audio parts as the test archives have (Zenodo: 5 + 1 and 1 + 1)."""
    remotes, steps = [], []
    for stem in fetching.FSD50K_PARTS:
        parts = sorted(n for n in files if n.startswith(stem))
        parts = [p for p in parts if not p.endswith(".zip")] + [f"{stem}.zip"]
        remotes += [fetching.Remote(p, "unused", md5(files[p])) for p in parts]
        steps.append(fetching.Extract(tuple(parts)))
    for name in ("FSD50K.ground_truth.zip", "FSD50K.metadata.zip"):
        remotes.append(fetching.Remote(name, "unused", md5(files[name])))
        steps.append(fetching.Extract((name,)))
    server.files.update(files)
    counts = (("FSD50K.dev_audio", 6), ("FSD50K.eval_audio", 3))
    return dataclasses.replace(SOURCES["fsd50k"], remotes=tuple(remotes), extract=tuple(steps), counts=counts)


def test_each_archive_dataset_lands_in_the_expected_layout(server, tmp_path):
    if shutil.which("zip") is None:
        pytest.fail("FSD50K's multi-part archives need the zip program (run_tests.sh installs it)")
    made = tmp_path / "made"
    made.mkdir()
    sources = {
        "esc50": served(server, "esc50", esc50_files(), counts=(("audio", 3),)),
        "us8k": served(server, "us8k", us8k_files(), counts=(("audio", 2),)),
        "clotho": served(server, "clotho", clotho_files(made), counts=tuple((s, 2) for s in fetching.CLOTHO)),
        "fsd50k": fsd50k_source(server, fsd50k_files(made)),
        "macs": served(server, "macs", {"MACS.yaml": b"files: []\n", "MACS_competence.csv": b"a\n",
                                        "LICENSE.txt": b"license\n"}),  # fmt: skip
    }
    assert sum(n.startswith("FSD50K.dev_audio.z0") for n in server.files) >= 2  # really multi-part
    for name, source in sources.items():
        root = tmp_path / name
        report = fetch(name, root, mirror=server.url, source=source, progress=False)
        assert sorted(report.downloaded) == sorted(r.name for r in source.remotes), name
        for path in source.expect:
            assert (root / path).exists(), (name, path)
        # A second run downloads and extracts nothing.
        before = len(server.requests)
        again = fetch(name, root, mirror=server.url, source=source, progress=False)
        assert (again.downloaded, again.extracted, len(server.requests)) == ([], [], before), name
    assert (tmp_path / "esc50/audio/1-100030-A-0.wav").is_file() and (tmp_path / "esc50/meta/esc50.csv").is_file()
    assert (tmp_path / "us8k/audio/fold10/1000-3-0-0.wav").is_file()
    assert (tmp_path / "clotho/evaluation/Rain on a roof, heavy (2).wav").is_file()
    assert len(list((tmp_path / "fsd50k/FSD50K.dev_audio").glob("*.wav"))) == 6
    assert (tmp_path / "fsd50k/FSD50K.ground_truth/vocabulary.csv").is_file()


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    files = us8k_files()
    size = len(files["UrbanSound8K.tar.gz"])
    source = served(server, "us8k", files)
    server.cut["UrbanSound8K.tar.gz"] = size // 3  # the first response drops after a third
    report = fetch("us8k", tmp_path / "us8k", mirror=server.url, source=source, progress=False)
    transfer = report.transfers["UrbanSound8K.tar.gz"]
    assert transfer.resumed_from == [size // 3] and transfer.received == size
    assert server.requests[-1] == ("UrbanSound8K.tar.gz", f"bytes={size // 3}-")

    # A run killed earlier left a .part: the next run asks only for the rest.
    root = tmp_path / "again"
    (root / ".downloads").mkdir(parents=True)
    (root / ".downloads/UrbanSound8K.tar.gz.part").write_bytes(files["UrbanSound8K.tar.gz"][: size // 2])
    report = fetch("us8k", root, mirror=server.url, source=source, progress=False)
    assert report.transfers["UrbanSound8K.tar.gz"].resumed_from == [size // 2]
    assert report.transfers["UrbanSound8K.tar.gz"].received == size - size // 2
    assert (root / "metadata/UrbanSound8K.csv").is_file()


def test_a_download_that_keeps_failing_keeps_its_part_and_says_how_to_resume(server, tmp_path):
    files = us8k_files()
    source = served(server, "us8k", files)
    for _ in range(3):
        server.cut["UrbanSound8K.tar.gz"] = 100
        with pytest.raises(FetchError, match="run the same command again to resume"):
            fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False, tries=1)
    assert (tmp_path / ".downloads/UrbanSound8K.tar.gz.part").stat().st_size == 300
    fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False)
    assert (tmp_path / "metadata/UrbanSound8K.csv").is_file()


def test_a_checksum_mismatch_deletes_the_file_and_a_rerun_recovers(server, tmp_path):
    files = us8k_files()
    source = served(server, "us8k", files)
    good = files["UrbanSound8K.tar.gz"]
    server.files["UrbanSound8K.tar.gz"] = good[:-1] + bytes([good[-1] ^ 0xFF])  # one flipped byte
    with pytest.raises(FetchError, match="checksum mismatch .* the file was deleted"):
        fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False)
    assert not list((tmp_path / ".downloads").iterdir())
    server.files["UrbanSound8K.tar.gz"] = good
    fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False)
    assert (tmp_path / "audio/fold1").is_dir()


def test_a_corrupt_archive_is_reported_with_what_to_do(server, tmp_path):
    truncated = esc50_files()["ESC-50-master.zip"][:-200]  # the checksum matches, the archive is cut
    source = served(server, "esc50", {"ESC-50-master.zip": truncated})
    with pytest.raises(FetchError, match="cannot be extracted .* delete it from .downloads/ and run again"):
        fetch("esc50", tmp_path, mirror=server.url, source=source, progress=False)
    assert not (tmp_path / "meta").exists() and not list((tmp_path / ".downloads").glob("*.extracted"))


def test_the_command_checks_the_published_checksums_and_counts(server, tmp_path, capsys):
    """Through `blat fetch` with the real catalogue: the test archives are not the published files."""
    server.files.update(us8k_files())
    assert blat(["fetch", "us8k", "--root", str(tmp_path / "us8k"), "--mirror", server.url, "--no-progress"]) == 2
    assert "published 9aa69802bbf37fb986f71ec1483a196e" in capsys.readouterr().err
    # ESC-50 publishes no checksum: the content is checked instead (2,000 clips).
    server.files.update(esc50_files())
    assert blat(["fetch", "esc50", "--root", str(tmp_path / "esc50"), "--mirror", server.url, "--no-progress"]) == 2
    assert "holds 3 audio files, the published dataset 2000" in capsys.readouterr().err


def test_youtube_sets_get_their_metadata_and_the_list_of_clips(server, tmp_path, capsys, few_rows):
    header = "audiocap_id,youtube_id,start_time,caption\n"
    server.files.update({
        "train.csv": (header + "1,-abc,30,a dog barks\n2,def,0,rain falls\n").encode(),
        "val.csv": (header + "3,ghi,10,a car\n4,ghi,10,a car passes\n").encode(),
        "test.csv": (header + "5,jkl,20,birds\n").encode(),
    })  # fmt: skip
    code = blat(["fetch", "audiocaps", "--root", str(tmp_path), "--mirror", server.url, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "download_list.csv" in out and "audio_32000Hz" in out
    lines = (tmp_path / "download_list.csv").read_text().splitlines()
    assert lines[0] == "youtube_id,start_seconds,end_seconds,split,file"
    assert lines[1:] == ["-abc,30,40,train,audio_32000Hz/train/-abc_30.flac",
                         "def,0,10,train,audio_32000Hz/train/def_0.flac",
                         "ghi,10,20,val,audio_32000Hz/val/ghi_10.flac",
                         "jkl,20,30,test,audio_32000Hz/test/jkl_20.flac"]  # fmt: skip


def test_fetch_prints_the_paper_profiles_entry_for_the_layout_it_writes():
    """What `blat fetch` tells the user to set is what params.paper.yaml already says (but the root)."""
    import yaml

    from tests.conftest import ROOT

    paper = yaml.safe_load((ROOT / "params.paper.yaml").read_text())["prepare"]["datasets"]
    for name, source in SOURCES.items():
        printed = yaml.safe_load(source.params.replace("DIR", "/x"))
        expected = {"meta": ".", "audio": ".", **paper[name], "root": "/x"}
        assert {"meta": ".", "audio": ".", **printed} == expected, name


def test_audioset_gets_its_segment_lists_and_the_clips_to_fetch(server, tmp_path, few_rows):
    """The four AudioSet CSVs (comment header lines, quoted mid lists, a malformed and a repeated row) are
    read as `prepare` reads them: every listed clip once, in the PANNs layout's file names."""
    header = "# Segments csv\n# num_ytids=3\n# YTID, start_seconds, end_seconds, positive_labels\n"
    server.files.update({
        "class_labels_indices.csv": b'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0jbk,"Animal"\n',
        "balanced_train_segments.csv": (header + '-abc, 30.000, 40.000, "/m/09x0r,/m/0jbk"\nbad row\n').encode(),
        "eval_segments.csv": (header + 'def, 0.000, 10.000, "/m/0jbk"\n').encode(),
        "unbalanced_train_segments.csv":
            (header + 'ghi, 5.000, 15.000, "/m/09x0r"\n-abc, 1.0, 2.0, "/m/0jbk"\n').encode(),
    })  # fmt: skip
    report = fetch("audioset", tmp_path, mirror=server.url, progress=False)
    assert (tmp_path / "metadata/eval_segments.csv").is_file()
    lines = report.id_list.read_text().splitlines()
    assert lines == ["youtube_id,start_seconds,end_seconds,split,file",
                     "-abc,30.0,40.0,balanced_train,audios/balanced_train_segments/Y-abc.wav",
                     "ghi,5.0,15.0,unbalanced_train,audios/unbalanced_train_segments/Yghi.wav",
                     "def,0.0,10.0,eval,audios/eval_segments/Ydef.wav"]  # fmt: skip


# ---------------------------------------------------------------- hostile archives and servers
def tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def test_link_members_are_refused_whatever_the_interpreter_allows(server, tmp_path):
    """A tar member that is a link, even one pointing inside the archive (which the `data` filter allows), is
    refused before anything lands in the root: safety does not depend on Python's patch release."""
    members = {"UrbanSound8K/metadata/UrbanSound8K.csv": b"slice_file_name\n", "UrbanSound8K/audio/fold1/a.wav": wav()}
    archive = tar_gz(members, {"UrbanSound8K/audio/fold2": "fold1"})
    source = served(server, "us8k", {"UrbanSound8K.tar.gz": archive})
    with pytest.raises(FetchError, match="'UrbanSound8K/audio/fold2' is a link"):
        fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".downloads"]


def test_seven_zip_members_lose_setuid_and_world_writable_bits(server, tmp_path):
    """py7zr restores stored modes: a member stored 6777 lands without setuid/setgid and not world-writable."""
    stored = tmp_path / "stored.wav"
    stored.write_bytes(wav())
    os.chmod(stored, 0o6777)
    files = clotho_files(tmp_path)
    with py7zr.SevenZipFile(tmp_path / "clotho_audio_evaluation.7z", "w") as seven:
        seven.write(stored, "evaluation/setuid.wav")
        seven.writestr(wav(seed=2), "evaluation/Kitchen & cups.wav")
    files["clotho_audio_evaluation.7z"] = (tmp_path / "clotho_audio_evaluation.7z").read_bytes()
    fetch("clotho", tmp_path / "root", mirror=server.url, source=served(server, "clotho", files), progress=False)
    mode = stat.S_IMODE(os.stat(tmp_path / "root/evaluation/setuid.wav").st_mode)
    assert mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH | stat.S_IWGRP) == 0, oct(mode)


def test_extraction_never_removes_what_it_does_not_own(server, tmp_path):
    """An archive with a top-level `.downloads` is refused (it removed every other download); fetching us8k
    into esc50's root is refused before anything moves (it emptied esc50's audio/); a re-run after an
    interrupted move replaces only this archive's own entries."""
    top = f"ESC-50-{fetching.ESC50_COMMIT}"
    members = {f"{top}/meta/esc50.csv": b"filename\n", f"{top}/audio/1-1-A-0.wav": wav(), f"{top}/.downloads/x": b""}
    source = served(server, "esc50", {"ESC-50-master.zip": zip_bytes(members)})
    root = tmp_path / "one"
    (root / ".downloads").mkdir(parents=True)
    (root / ".downloads" / "other-dataset.zip").write_bytes(b"keep me")
    with pytest.raises(FetchError, match="top-level '.downloads'"):
        fetch("esc50", root, mirror=server.url, source=source, progress=False)
    assert (root / ".downloads" / "other-dataset.zip").read_bytes() == b"keep me"
    assert not (root / "audio").exists()

    shared = tmp_path / "shared"
    fetch("esc50", shared, mirror=server.url, source=served(server, "esc50", esc50_files()), progress=False)
    esc_audio = sorted(p.name for p in (shared / "audio").iterdir())
    with pytest.raises(FetchError, match="already exists and was not extracted from this archive"):
        fetch("us8k", shared, mirror=server.url, source=served(server, "us8k", us8k_files()), progress=False)
    assert sorted(p.name for p in (shared / "audio").iterdir()) == esc_audio
    assert not (shared / "metadata").exists()  # nothing of us8k moved in

    again = tmp_path / "again"  # an extraction killed half-way through its moves, then run again
    fetch("esc50", again, mirror=server.url, source=served(server, "esc50", esc50_files()), progress=False)
    (again / ".downloads" / "ESC-50-master.zip.extracted").unlink()
    shutil.rmtree(again / "meta")
    fetch("esc50", again, mirror=server.url, source=served(server, "esc50", esc50_files()), progress=False)
    assert (again / "meta/esc50.csv").is_file() and sorted(p.name for p in (again / "audio").iterdir()) == esc_audio


def test_downloads_stop_at_their_bound(server, tmp_path):
    """An endless body stops at the file's catalogued bound (nothing kept); a server announcing more than the
    bound is refused before any byte is written."""
    source = served(server, "us8k", us8k_files())
    bounded = dataclasses.replace(source, remotes=(dataclasses.replace(source.remotes[0], max_bytes=2_000_000),))
    server.endless["UrbanSound8K.tar.gz"] = 200_000_000
    started = time.monotonic()
    with pytest.raises(FetchError, match="sent more than 2,000,000 bytes"):
        fetch("us8k", tmp_path, mirror=server.url, source=bounded, progress=False)
    assert time.monotonic() - started < 20 and not list((tmp_path / ".downloads").iterdir())
    del server.endless["UrbanSound8K.tar.gz"]
    server.files["UrbanSound8K.tar.gz"] = b"\0" * 3_000_000
    with pytest.raises(FetchError, match="announces 3,000,000 bytes"):
        fetch("us8k", tmp_path, mirror=server.url, source=bounded, progress=False)


def test_an_archive_bomb_is_refused_before_anything_is_written(server, tmp_path):
    """A small zip declaring far more than it stores (30 MB of zeros in ~30 kB) is refused from its listing."""
    top = f"ESC-50-{fetching.ESC50_COMMIT}"
    bomb = zip_bytes({f"{top}/meta/esc50.csv": b"filename\n", f"{top}/audio/zeros.wav": b"\0" * 30_000_000})
    assert len(bomb) < 100_000
    with pytest.raises(FetchError, match="compression.*archive bomb"):
        fetch("esc50", tmp_path, mirror=server.url, source=served(server, "esc50", {"ESC-50-master.zip": bomb}),
              progress=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [".downloads"]
    assert sum(p.stat().st_size for p in (tmp_path / ".downloads").rglob("*") if p.is_file()) == len(bomb)
    source = served(server, "esc50", esc50_files())
    small = dataclasses.replace(source, extract=(dataclasses.replace(source.extract[0], max_unpacked=1000),))
    with pytest.raises(FetchError, match="more than the 1,000 the published archive holds"):
        fetch("esc50", tmp_path / "b", mirror=server.url, source=small, progress=False)


def test_an_html_page_is_not_accepted_as_metadata(server, tmp_path, capsys, few_rows):
    """A captive portal's page served for the AudioSet CSVs fails loudly (exit 2), is deleted, and one kept by an
    older version is downloaded again; an empty clip list is an error too."""
    page = b"<!DOCTYPE html><html><head><title>Sign in to the Wi-Fi</title></head><body>...</body></html>\n"
    for name in ("class_labels_indices.csv", "balanced_train_segments.csv", "eval_segments.csv",
                 "unbalanced_train_segments.csv"):  # fmt: skip
        server.files[name] = page
    code = blat(["fetch", "audioset", "--root", str(tmp_path), "--mirror", server.url, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "an HTML page, not the published file" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "metadata/class_labels_indices.csv").exists()
    header = "# Segments csv\n# num_ytids=1\n# YTID, start_seconds, end_seconds, positive_labels\n"
    (tmp_path / "metadata").mkdir(exist_ok=True)
    (tmp_path / "metadata/class_labels_indices.csv").write_bytes(page)  # kept by an earlier version
    server.files["class_labels_indices.csv"] = b'index,mid,display_name\n0,/m/09x0r,"Speech"\n'
    for name in ("balanced_train_segments.csv", "eval_segments.csv", "unbalanced_train_segments.csv"):
        server.files[name] = header.encode()  # the right header, no rows
    code = blat(["fetch", "audioset", "--root", str(tmp_path), "--mirror", server.url, "--no-progress"])
    assert code == 2 and "its metadata lists no clips to download" in capsys.readouterr().err
    assert (tmp_path / "metadata/class_labels_indices.csv").read_bytes().startswith(b"index,mid")


def test_a_full_disk_while_extracting_says_the_archive_is_intact(server, tmp_path, monkeypatch):
    """ENOSPC in the middle of unpacking: the message says the disk filled up and the archive is kept, not
    "delete the archive"; a re-run after freeing space extracts it without downloading it again."""
    import errno

    from blat_core.app.fetch import transfer

    source = served(server, "us8k", us8k_files())
    real = tarfile.TarFile.extractall

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(FetchError, match="the disk filled up while extracting .*intact") as caught:
        fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False)
    assert "download it anew" not in str(caught.value)
    assert (tmp_path / ".downloads/UrbanSound8K.tar.gz").is_file()
    monkeypatch.setattr(tarfile.TarFile, "extractall", real)
    before = len(server.requests)
    fetch("us8k", tmp_path, mirror=server.url, source=source, progress=False)
    assert len(server.requests) == before and (tmp_path / "metadata/UrbanSound8K.csv").is_file()
    assert transfer.MAX_RATIO == 20


def test_a_root_that_is_a_file_or_read_only_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    assert blat(["fetch", "esc50", "--root", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert blat(["fetch", "esc50", "--root", str(tmp_path / "file" / "below")]) == 2
    assert "cannot be created" in capsys.readouterr().err
    # The tests run as root, which permissions do not stop: the check itself is what is tested.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert blat(["fetch", "esc50", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and len(err.strip().splitlines()) == 1
