"""Benchmark: what BLAT_CPU_RUNTIME=portable costs on this CPU, native vs portable in one run. Each mode runs
in its own process (the kernels are fixed at start-up): training steps of the demo's tagger shape (1/8-width
CNN14 at 16 kHz, batch 32 of 10 s clips, Adam) and of the demo's bi-encoder text side (a MiniLM-sized BERT,
batch 32 × 30 tokens); the median step time of each and the ratio.

    python benchmarks/cpu_runtime.py [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(steps: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch
    from transformers import BertConfig, BertModel

    import blat_core  # noqa: F401  (fixes the CPU kernels before any op: the variables are read lazily)
    from blat_core import compute, cpu_runtime
    from blat_core.models.audio.encoder import build_audio_encoder

    compute.seed_everything(0)
    audio = build_audio_encoder({"name": "cnn14", "sample_rate": 16000, "channels": [8, 16, 32, 64, 128, 256],
                                 "num_classes": 27})  # fmt: skip
    text = BertModel(BertConfig(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536))
    wave, lengths = torch.randn(32, 160000) * 0.1, torch.full((32,), 160000)
    tokens = torch.randint(1000, 20000, (32, 30))
    out = {"stamp": cpu_runtime.stamp("cpu")}
    for name, model, step in (
        ("tagger_step", audio, lambda: audio(wave, lengths).float().pow(2).mean()),
        ("text_step", text, lambda: text(input_ids=tokens).last_hidden_state.pow(2).mean()),
    ):
        optimizer = torch.optim.Adam(model.parameters(), 1.0e-4)
        times = []
        for _ in range(steps + 1):  # the first step warms up
            start = time.perf_counter()
            loss = step()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times[1:])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.steps)))
        return
    results = {}
    for mode in ("native", "portable"):
        env = {**os.environ, "BLAT_CPU_RUNTIME": mode}
        done = subprocess.run([sys.executable, __file__, "--worker", "--steps", str(args.steps)], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    for mode, r in results.items():
        print(f"{mode:9s} tagger step {r['tagger_step']:.3f} s, text step {r['text_step']:.3f} s  {r['stamp']}")
    for key in ("tagger_step", "text_step"):
        print(f"portable / native, {key}: {results['portable'][key] / results['native'][key]:.2f}×")


if __name__ == "__main__":
    main()
