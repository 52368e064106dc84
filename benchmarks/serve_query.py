"""Benchmark: `blat serve` query latency on a 10,000-clip index, on this machine.

    python benchmarks/serve_query.py --model data/models/blat_stage2 [--clips 10000] [--queries 50]

Builds an index of `--clips` random unit embeddings stamped with the model's weights digest (search
never opens the audio), starts the real HTTP server on 127.0.0.1 and times `--queries` different text
queries end to end (request, text embedding, scoring every clip, top 10, the HTML page), after two
warm-up queries. Prints the median, 95th percentile and worst latency.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from werkzeug.serving import make_server

from blat_core.app.serve import create_app, load_searcher
from blat_core.models.checkpoints import file_digest

WORDS = ["dog", "rain", "siren", "bell", "engine", "birds", "speech", "music", "door", "wind", "water", "clock"]


def synthetic_index(path: Path, model: Path, clips: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((clips, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    table = pa.table({"path": [f"clip_{i:05d}.wav" for i in range(clips)],
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), dim)})  # fmt: skip
    meta = {"model": str(model), "model_digest": file_digest(model / "blat.safetensors"),
            "audio_root": str(path.parent / "audio")}  # fmt: skip
    pq.write_table(table.replace_schema_metadata({"blat": json.dumps(meta)}), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    dim = json.loads((args.model / "blat.json").read_text())["config"]["embed_dim"]
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index.parquet"
        synthetic_index(index, args.model, args.clips, dim)
        searcher = load_searcher(str(index), None, "cpu")
        server = make_server("127.0.0.1", 0, create_app(searcher, k=10), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rng = np.random.default_rng(1)
        queries = [f"a {' and '.join(rng.choice(WORDS, size=2, replace=False))} {i}" for i in range(args.queries + 2)]
        seconds = []
        for query in queries:
            url = f"http://127.0.0.1:{server.server_port}/?q={urllib.parse.quote(query)}"
            started = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as response:
                body = response.read().decode()
            seconds.append(time.perf_counter() - started)
            assert response.status == 200 and body.count("<li>") >= 10
        server.shutdown()
    timed = sorted(seconds[2:])
    p95 = timed[min(len(timed) - 1, int(0.95 * len(timed)))]
    median = 1000 * statistics.median(timed)
    print(f"{args.clips:,} clips, {dim}-d, {len(timed)} queries over HTTP: median {median:.1f} ms, "
          f"p95 {1000 * p95:.1f} ms, worst {1000 * timed[-1]:.1f} ms")


if __name__ == "__main__":
    main()
