"""`blat serve`: the search page driven in Debian's headless Chromium (type a query, ranked results, an
audio element that loads, the clip page, search by an uploaded file, a screenshot), and its refusals
(404 outside the index, 400 for an empty or oversized query) through the HTTP server."""

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
                             str(models / "captioner"), str(models / "tagger"))  # fmt: skip
    server = make_server("127.0.0.1", 0, create_app(searcher, k=5), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "audio": audio, "root": root, "searcher": searcher}
    server.shutdown()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
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
    real = inference.embed_waves
    monkeypatch.setattr(inference, "embed_waves", lambda model, waves, window, *a, **k: seen.append(window)
                        or real(model, waves, window, *a, **k))  # fmt: skip
    searcher.by_file(str(served["audio"] / "clip 0.wav"), 3)
    assert seen == [8000]  # 0.5 s at 16 kHz
