"""Benchmark: CPU inference latency of an exported BLAT model in PyTorch and in onnxruntime, in one run: the
audio tower on batches of 1 and 16 ten-second clips, the text tower on batches of 1 and 16 captions (30 tokens),
fp32, the same thread count for both runtimes; the median of `--repeats` calls after one warm-up, and the ratio.

    python benchmarks/onnx_latency.py --model data/models/blat_stage2 [--repeats 5] [--threads 2]
    python benchmarks/onnx_latency.py --paper-shape      # random weights, CNN14 at paper width (32 kHz)

The model is exported with `--format onnx` into a temporary folder first (the export's parity check included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rows(loaded, sessions: dict, batch: int, seconds: float, repeats: int) -> list[dict]:
    """Both towers at one batch size, in both runtimes: the median seconds per call, as table rows."""
    import numpy as np
    import torch

    model = loaded.model.eval()
    samples = int(seconds * loaded.sample_rate)
    wave = np.random.default_rng(0).normal(0, 0.1, (batch, samples)).astype(np.float32)
    lengths = np.full(batch, samples, dtype=np.int64)
    caption = "a dog barks while a man speaks over the sound of traffic in the rain " * 3
    tokens = loaded.tokenizer([caption] * batch)
    feeds = {k: v.numpy() for k, v in tokens.items()}
    wave_t, lengths_t = torch.from_numpy(wave), torch.from_numpy(lengths)
    with torch.inference_mode():
        timings = {
            ("audio", "pytorch"): _median_seconds(lambda: model.encode_audio(wave_t, lengths_t), repeats),
            ("audio", "onnxruntime"): _median_seconds(
                lambda: sessions["audio"].run(None, {"waveform": wave, "lengths": lengths}), repeats),
            ("text", "pytorch"): _median_seconds(
                lambda: model.encode_text(tokens["input_ids"], tokens["attention_mask"]), repeats),
            ("text", "onnxruntime"): _median_seconds(lambda: sessions["text"].run(None, feeds), repeats),
        }  # fmt: skip
    rows = []
    for tower in ("audio", "text"):
        torch_s, ort_s = timings[(tower, "pytorch")], timings[(tower, "onnxruntime")]
        rows.append({"tower": tower, "batch": batch,
                     "tokens": int(tokens["input_ids"].shape[1]) if tower == "text" else None,
                     "pytorch_ms": round(1000 * torch_s, 1), "onnxruntime_ms": round(1000 * ort_s, 1),
                     "speedup": round(torch_s / ort_s, 2)})  # fmt: skip
    return rows


def _paper_shape_folder(work: Path) -> Path:
    """A pipeline-layout model folder with random weights: CNN14 at the paper's width at 32 kHz, the demo's
    text tower (all-MiniLM-L6-v2 from its package), a 1024-d space."""
    import torch

    from blat_core.models.blat_model import build_biencoder, save_blat
    from blat_core.models.text.encoder import Tokenizer, resolve_folder

    text = resolve_folder("")
    channels = [64, 128, 256, 512, 1024, 2048]
    config = {"audio": {"name": "cnn14", "sample_rate": 32000, "channels": channels, "num_classes": 0},
              "text": {"name": "bert", "folder": str(text), "pretrained": False, "max_tokens": 30},
              "embed_dim": 1024, "logit_scale_init": 2.65926, "logit_scale_max": 4.6051702,
              "sample_rate": 32000}  # fmt: skip
    torch.manual_seed(0)
    model = build_biencoder(config)
    folder = work / "paper_shape"
    folder.mkdir()
    save_blat(folder, model, model.state_dict(), config, Tokenizer(text, 30), {"stage": "random"})
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a pipeline model folder (data/models/blat_stage2)")
    source.add_argument("--paper-shape", action="store_true", help="random weights at the paper's CNN14 width")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import onnxruntime
    import torch

    from blat_core import cpu_runtime
    from blat_core.models import portable

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        source = _paper_shape_folder(work) if args.paper_shape else Path(args.model)
        out = portable.export_folder(source, work / "exported", "benchmark\n")
        loaded = portable.load_model(out)
        started = time.perf_counter()
        portable.export_onnx(loaded, out)
        export_seconds = time.perf_counter() - started
        worst = portable.check_onnx(loaded, out)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        sessions = {kind: onnxruntime.InferenceSession(str(out / name), options, providers=["CPUExecutionProvider"])
                    for kind, name in (("audio", portable.AUDIO_ONNX), ("text", portable.TEXT_ONNX))}  # fmt: skip
        rows = []
        for batch in (1, 16):
            rows += _rows(loaded, sessions, batch, args.seconds, args.repeats)
        report = {"model": "paper shape (random weights)" if args.paper_shape else str(source),
                  "audio": loaded.config["audio"], "seconds": args.seconds, "threads": args.threads,
                  "repeats": args.repeats, "export_seconds": round(export_seconds, 1),
                  "parity_max_abs": worst, "runtime": cpu_runtime.stamp("cpu"),
                  "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
                  "rows": rows}  # fmt: skip
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
