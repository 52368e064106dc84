"""Benchmark: training throughput (pairs/s) of the contrastive bi-encoder step, eager fp32 vs the
optimised path (bf16 autocast + channels_last + torch.compile of the audio tower on GPU), in one run;
on a GPU also the data-loader rate from prepared int16 shards.

    python benchmarks/pretrain_step.py --size paper [--batch 128] [--seconds 10] [--steps 20]
    python benchmarks/pretrain_step.py --size demo --steps 5            # CPU-sized
    python benchmarks/pretrain_step.py --size paper --loader data/prepared/audioset

Random weights (speed does not depend on them): `paper` = CNN14 at 32 kHz + BERT-medium (8 layers,
hidden 512); `demo` = the demo's 1/8-width CNN14 at 16 kHz + a MiniLM-sized text tower (6 layers, 384).
Captions are 30 tokens. Prints one line per path and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import torch

from blat_core.data import batching
from blat_core.models.biencoder import ContrastiveLoss
from blat_core.models.blat_model import build_biencoder

SIZES = {  # audio widths, sample rate, text tower (layers, hidden, heads, FFN), shared space
    "paper": {"channels": [64, 128, 256, 512, 1024, 2048], "sample_rate": 32000, "text": (8, 512, 8, 2048),
              "embed": 1024},
    "demo": {"channels": [8, 16, 32, 64, 128, 256], "sample_rate": 16000, "text": (6, 384, 12, 1536), "embed": 256},
}  # fmt: skip


def _model(size: dict, folder: Path):
    from transformers import BertConfig

    layers, hidden, heads, ffn = size["text"]
    BertConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, intermediate_size=ffn,
               max_position_embeddings=512).save_pretrained(str(folder))  # fmt: skip
    config = {
        "audio": {"name": "cnn14", "sample_rate": size["sample_rate"], "channels": size["channels"]},
        "text": {"name": "bert", "folder": str(folder), "pretrained": False, "max_tokens": 30},
        "embed_dim": size["embed"],
        "logit_scale_max": None,
    }
    return build_biencoder(config)


def _time_steps(model, device, batch: int, samples: int, steps: int, optimised: bool) -> float:
    """Pairs/s over `steps` timed steps after 3 warm-up steps (compile happens in the warm-up)."""
    fused = device.type == "cuda"
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0e-4, fused=fused)
    loss_fn = ContrastiveLoss()
    waves = (torch.randn(batch, samples) * 3000).to(torch.int16)
    lengths = torch.full((batch,), samples)
    ids = torch.randint(1000, 30000, (batch, 30))
    mask = torch.ones_like(ids)
    forward = model
    if optimised and device.type == "cuda":
        model.audio_encoder.forward_embedding = torch.compile(model.audio_encoder.forward_embedding)
    model.train()

    def step() -> None:
        wave = batching.to_device_float(waves, device)
        bf16 = optimised and device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            out = forward(wave, lengths.to(device), ids.to(device), mask.to(device))
            loss = loss_fn(out.audio, out.text, out.logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - start)


def _loader_rate(prepared: Path, batch: int, samples: int, workers: int, device, batches: int) -> float:
    from blat_core.data.prepared import PreparedDataset

    dataset = PreparedDataset(prepared)
    ids = dataset.ids
    clips = batching.ClipDataset(dataset, ids, max_samples=samples)
    plan = [[((b * batch + k) % len(ids), (0, b, k)) for k in range(batch)] for b in range(batches)]
    loader = batching.loader(clips, plan, workers, device)
    start, count = time.perf_counter(), 0
    for waves, _, _ in loader:
        batching.to_device_float(waves, device)
        count += len(waves)
    _sync(device)
    return count / (time.perf_counter() - start)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="paper")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--loader", type=Path, help="a prepared dataset folder: also time the data loader")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device, size = torch.device(args.device), SIZES[args.size]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 eager means fp32
    samples = int(args.seconds * size["sample_rate"])
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "size": args.size,
               "batch": args.batch, "seconds": args.seconds}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name, optimised in (("eager_fp32", False), ("optimised", True)):
            torch.manual_seed(0)
            model = _model(size, Path(folder)).to(device)
            results[name] = _time_steps(model, device, args.batch, samples, args.steps, optimised)
            print(f"{name:>10}: {results[name]:8.1f} pairs/s", flush=True)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    results["ratio"] = results["optimised"] / results["eager_fp32"]
    print(f"     ratio: {results['ratio']:.2f}x (optimised / eager fp32; on CPU both run fp32 eager)")
    if args.loader:
        results["loader_clips_per_s"] = _loader_rate(args.loader, args.batch, samples, args.workers, device, 20)
        print(f"    loader: {results['loader_clips_per_s']:8.1f} clips/s ({args.workers} workers)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
