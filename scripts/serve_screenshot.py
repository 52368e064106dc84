"""Screenshots of `blat serve` in Debian's headless Chromium (how docs/images/serve_*.png were made).

    python scripts/serve_screenshot.py --index index.parquet --query "a dog barks" --out docs/images \
        [--labels labels.txt] [--captioner data/models/captioner_tags --tagger data/models/tagger]

Starts the server on 127.0.0.1, searches for the query and saves `serve_search.png`, then opens the
first result's clip page and saves `serve_clip.png`.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from blat_core.app.serve import create_app, load_searcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--audio-root", help="the folder the index's audio is in (blat serve --audio-root)")
    parser.add_argument("--labels")
    parser.add_argument("--captioner")
    parser.add_argument("--tagger")
    parser.add_argument("-k", type=int, default=6)
    args = parser.parse_args()
    searcher = load_searcher(args.index, None, "cpu", args.labels, args.captioner, args.tagger, args.audio_root)
    server = make_server("127.0.0.1", 0, create_app(searcher, k=args.k), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,860"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        driver.find_element(By.ID, "query").send_keys(args.query, Keys.ENTER)
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results li"))
        driver.save_screenshot(str(args.out / "serve_search.png"))
        driver.find_element(By.CSS_SELECTOR, "#results a").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "clip"))
        driver.save_screenshot(str(args.out / "serve_clip.png"))
    finally:
        driver.quit()
        server.shutdown()
    print(f"saved {args.out / 'serve_search.png'} and {args.out / 'serve_clip.png'}")


if __name__ == "__main__":
    main()
