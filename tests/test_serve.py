"""`blat serve`: the search page driven in Debian's headless Chromium (type a query, ranked results, an
audio element that loads, the clip page, search by an uploaded file, a screenshot), and its refusals
through the HTTP server: 404 outside the index and outside --audio-root, 400 for an empty or oversized
query or a foreign Host, 403 for another site's upload, 413 for an upload that decodes past the cap, 503
when every embedding slot is taken."""

from __future__ import annotations

import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from werkzeug.serving import make_server

from blat_core.app import cli
from blat_core.app.serve import MAX_QUERY, create_app, load_searcher
from tests.helpers.tiny_models import make_models

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
LABELS = ["dog bark", "rain", "church bells", "speech", "siren", "engine"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny model's index of eight clips, served on 127.0.0.1 (with labels, captioner and tagger)."""
    root = tmp_path_factory.mktemp("serve")
    models = make_models(root / "models")
    audio = root / "audio"
    rng = np.random.default_rng(0)
    for i in range(8):
        folder = audio / ("sub" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        tone = np.sin(2 * np.pi * (200 + 100 * i) * np.arange(16000 * 2) / 16000)
        sf.write(folder / f"clip {i}.wav", (0.3 * tone + 0.05 * rng.standard_normal(tone.shape)).astype(np.float32),
                 16000)  # fmt: skip
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    assert cli.main(["embed", str(audio), "--model", str(models / "blat"), "--out", str(root / "index.parquet")]) == 0
    searcher = load_searcher(str(root / "index.parquet"), None, "cpu", str(root / "labels.txt"),
                             str(models / "captioner"), str(models / "tagger"), audio_root=str(audio))  # fmt: skip
    server = make_server("127.0.0.1", 0, create_app(searcher, k=5), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "audio": audio, "root": root, "searcher": searcher}
    server.shutdown()


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_only_the_index_audio_is_served(served):
    url = served["url"]
    status, _ = get(f"{url}/audio/0")
    assert status == 200
    for path in ("/audio/8", "/audio/-1", "/audio/..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "/audio/0/../../x",
                 "/clip/99"):  # fmt: skip
        assert get(url + path)[0] == 404, path
    request = urllib.request.Request(f"{url}/audio/1", headers={"Range": "bytes=0-99"})
    with urllib.request.urlopen(request, timeout=30) as response:  # seeking in the player: HTTP ranges
        assert response.status == 206 and len(response.read()) == 100


def test_empty_and_oversized_queries_get_a_message(served):
    status, body = get(f"{served['url']}/?q=%20")
    assert status == 400 and "the query is empty" in body
    status, body = get(f"{served['url']}/?q={'a' * (MAX_QUERY + 1)}")
    assert status == 400 and f"at most {MAX_QUERY} are allowed" in body
    status, body = get(f"{served['url']}/api/search?q=")
    assert status == 400 and "empty" in body


def test_the_api_ranks_like_the_searcher(served):
    import json

    status, body = get(f"{served['url']}/api/search?q=a%20dog%20barks")
    results = json.loads(body)["results"]
    assert status == 200 and len(results) == 5
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    found, _ = served["searcher"].by_text("a dog barks", 5)
    assert [r["index"] for r in results] == [i for i, _ in found]


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        message = "needs Debian's chromium and chromium-driver (run_tests.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_search_listen_and_open_a_clip_in_a_browser(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served["url"] + "/")
    box = browser.find_element(By.ID, "query")
    box.send_keys("a dog barks", Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results li"))
    items = browser.find_elements(By.CSS_SELECTOR, "#results li")
    scores = [float(e.text) for e in browser.find_elements(By.CSS_SELECTOR, "#results .score")]
    assert len(items) == 5 and scores == sorted(scores, reverse=True)
    expected = [served["searcher"].paths[i] for i, _ in served["searcher"].by_text("a dog barks", 5)[0]]
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#results a")] == expected

    # The first player loads its clip: metadata read, a 2-second duration.
    script = "const a = document.querySelector('#results audio'); a.preload = 'auto'; a.load(); return true"
    browser.execute_script(script)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.querySelector('#results audio').readyState >= 1"))  # fmt: skip
    duration = browser.execute_script("return document.querySelector('#results audio').duration")
    assert abs(duration - 2.0) < 0.05
    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("BLAT_SCREENSHOT"):  # how docs/images/serve_*.png were made
        shutil.copy(shot, os.environ["BLAT_SCREENSHOT"])

    # The clip page: its path, zero-shot labels, caption and tags, nearest clips without itself.
    first = browser.find_element(By.CSS_SELECTOR, "#results a")
    path = first.text
    first.click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "clip"))
    assert browser.find_element(By.ID, "clip").text == path
    assert len(browser.find_elements(By.CSS_SELECTOR, "#labels li")) == 5
    assert browser.find_element(By.ID, "caption").text.startswith("Caption:")
    nearest = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#results a")]
    assert len(nearest) == 5 and path not in nearest

    # Search by an uploaded file; a path outside the index and an empty query, as the browser sees them.
    browser.get(served["url"] + "/")
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(served["audio"] / "clip 0.wav"))
    browser.find_element(By.XPATH, "//button[text()='Search by audio']").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results li"))
    assert browser.find_element(By.ID, "message").text == "Clips nearest to clip 0.wav:"
    by_file = served["searcher"].by_file(str(served["audio"] / "clip 0.wav"), 5)
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#results a")] == [
        served["searcher"].paths[i] for i, _ in by_file
    ]
    browser.get(served["url"] + "/audio/99")
    assert "Not Found" in browser.page_source
    browser.get(served["url"] + "/?q=")
    assert "the query is empty" in browser.find_element(By.ID, "message").text


def test_the_latency_benchmark_runs(served):
    """benchmarks/serve_query.py at a small size (the 10,000-clip figure is in docs/cli.md)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    model = served["root"] / "models" / "blat"
    done = subprocess.run([sys.executable, "benchmarks/serve_query.py", "--model", str(model), "--clips", "500",
                           "--queries", "3"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "500 clips, 16-d, 3 queries over HTTP: median" in done.stdout


def test_search_by_file_embeds_with_the_index_window(served, tmp_path, monkeypatch):
    """An uploaded file is embedded with the window its index was made with (`blat embed --window-seconds`),
    not a fixed 10 s, so its scores compare with the index's."""
    import blat_core.models.inference as inference

    index = tmp_path / "short.parquet"
    models = served["root"] / "models"
    assert cli.main(["embed", str(served["audio"]), "--model", str(models / "blat"), "--out", str(index),
                     "--window-seconds", "0.5"]) == 0  # fmt: skip
    searcher = load_searcher(str(index), None, "cpu")
    assert searcher.window_seconds == 0.5 and served["searcher"].window_seconds == 10.0
    seen = []
    real = inference.stream_windows
    monkeypatch.setattr(inference, "stream_windows", lambda pieces, window: seen.append(window)
                        or real(pieces, window))  # fmt: skip
    searcher.by_file(str(served["audio"] / "clip 0.wav"), 3)
    assert seen == [8000]  # 0.5 s at 16 kHz


def post_audio(url: str, name: str, data: bytes, headers: dict | None = None) -> tuple[int, str]:
    """A multipart upload as the page's form sends it (`audio` field)."""
    boundary = "blatboundary7"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(f"{url}/by-audio", body, {**kind, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _flac(path: Path, seconds: float, rate: int = 48000) -> bytes:
    """A constant-signal FLAC: a few bytes per block on disk, `seconds` of audio decoded."""
    with sf.SoundFile(path, "w", rate, 1, format="FLAC") as out:
        for _ in range(int(seconds // 10)):
            out.write(np.full(rate * 10, 0.25, dtype=np.float32))
    return path.read_bytes()


def _without_length(data: bytes) -> bytes:
    """The FLAC with STREAMINFO's total-samples field and MD5 zeroed ("unknown", as a program writing to a pipe
    leaves it; FLAC format spec, METADATA_BLOCK_STREAMINFO): its header no longer tells how long it decodes."""
    data = bytearray(data)
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # the first block is STREAMINFO
    data[8 + 13] &= 0xF0
    data[8 + 14 : 8 + 34] = bytes(20)
    return bytes(data)


def test_an_upload_that_decodes_past_the_cap_is_refused_early(served, tmp_path, monkeypatch):
    """A small file that decodes to long audio (a "decompression bomb") whose header does not say its length
    gets 413 once the decoded audio passes the cap, and decoding stops there: more than the cap's samples are
    read (the decode check, not the header, refused it) and at most the cap plus one block."""
    import blat_core.app.serve as serve
    import blat_core.data.audio as audio

    monkeypatch.setattr(serve, "MAX_UPLOAD_SECONDS", 30.0)
    bomb = _without_length(_flac(tmp_path / "bomb.flac", 600))  # 10 minutes in about 90 kB, length unknown
    assert len(bomb) < 200_000 and sf.info(str(tmp_path / "bomb.flac")).frames == 600 * 48000
    read = []
    real = audio._read_into
    monkeypatch.setattr(audio, "_read_into", lambda handle, out: read.append(real(handle, out)) or read[-1])
    status, body = post_audio(served["url"], "bomb.flac", bomb)
    assert status == 413 and "longer than 0.5 minutes" in body, body
    assert 30 * 48000 < sum(read) <= 30 * 48000 + audio.BLOCK_FRAMES, sum(read)
    status, body = post_audio(served["url"], "short.flac", _flac(tmp_path / "short.flac", 20))
    assert status == 200 and "Clips nearest to short.flac" in body


def test_uploads_wait_for_a_free_slot_and_get_503_when_none_frees(served, tmp_path, monkeypatch):
    """At most EMBED_SLOTS uploads decode and embed at once; one that cannot get a slot in time gets 503."""
    import blat_core.app.serve as serve

    monkeypatch.setattr(serve, "BUSY_SECONDS", 0.2)
    searcher = served["searcher"]
    for _ in range(serve.EMBED_SLOTS):
        assert searcher.slots.acquire(timeout=1)
    try:
        status, body = post_audio(served["url"], "clip.wav", (served["audio"] / "clip 0.wav").read_bytes())
        assert status == 503 and "busy" in body
    finally:
        for _ in range(serve.EMBED_SLOTS):
            searcher.slots.release()
    assert post_audio(served["url"], "clip.wav", (served["audio"] / "clip 0.wav").read_bytes())[0] == 200


def test_foreign_hosts_and_cross_site_uploads_are_refused(served):
    """A Host header naming another site (DNS rebinding) gets 400 on every page; an upload whose Origin is
    another site's page gets 403; the page's own origin and non-browser clients (no Origin) are served."""
    url = served["url"]
    port = url.rsplit(":", 1)[1]
    for path in ("/", "/?q=dog", "/api/search?q=dog", "/audio/0", "/clip/0"):
        assert get(url + path, {"Host": f"evil.example:{port}"})[0] == 400, path
    assert get(url + "/?q=dog", {"Host": f"localhost:{port}"})[0] == 200
    data = (served["audio"] / "clip 0.wav").read_bytes()
    assert post_audio(url, "clip.wav", data, {"Origin": "https://evil.example"})[0] == 403
    assert post_audio(url, "clip.wav", data, {"Origin": "null"})[0] == 403
    assert post_audio(url, "clip.wav", data, {"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert post_audio(url, "clip.wav", data, {"Origin": url})[0] == 200
    assert post_audio(url, "clip.wav", data)[0] == 200


def test_the_index_cannot_choose_the_served_folder(served, tmp_path):
    """An index whose metadata says audio_root "/" with a row etc/passwd serves nothing without --audio-root,
    and with one only that folder's audio files: the password file never comes back."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(served["root"] / "index.parquet")
    meta = json.loads(table.schema.metadata[b"blat"])
    rows = table.num_rows
    paths = ["etc/passwd", "../../../../etc/passwd", "notes.txt"] + table.column("path").to_pylist()[3:]
    (served["audio"] / "notes.txt").write_text("not audio")
    hostile = table.set_column(0, "path", pa.array(paths[:rows]))
    hostile = hostile.replace_schema_metadata({"blat": json.dumps({**meta, "audio_root": "/"})})
    pq.write_table(hostile, tmp_path / "hostile.parquet")
    for root in (None, "/", str(served["audio"])):
        searcher = load_searcher(str(tmp_path / "hostile.parquet"), None, "cpu", audio_root=root)
        server = make_server("127.0.0.1", 0, create_app(searcher, k=3), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            for i in range(3):
                status, body = get(f"{base}/audio/{i}")
                assert status == 404 and "root:" not in body, (root, i)
            assert get(f"{base}/audio/3")[0] == (404 if root is None else 200 if root != "/" else 404)
            status, body = get(base + "/")
            assert status == 200 and ("playback off" in body) == (root is None)
        finally:
            server.shutdown()


def test_odd_upload_names_and_pipe_written_flacs(served, tmp_path):
    """An upload name with a NUL byte, a slash or a long suffix is answered (not 500); a FLAC whose header
    gives no length (as written to a pipe) is decoded in blocks, not refused."""
    from tests.test_hostile_input import flac_without_length

    data = (served["audio"] / "clip 0.wav").read_bytes()
    for name in ("a\x00b.wav", "../../x.wav", "clip.wav\x00.sh", "x." + "w" * 300):
        status, body = post_audio(served["url"], name, data)
        assert status == 200, (name, status, body[:300])
    piped = flac_without_length(tmp_path / "piped.flac", 3.0)
    status, body = post_audio(served["url"], "piped.flac", piped.read_bytes())
    assert status == 200 and "Clips nearest to piped.flac" in body, body[:500]
