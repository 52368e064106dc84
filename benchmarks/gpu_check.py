"""The GPU check: one prepared run that measures, each as a rate and a ratio in the same run, on data it
generates at paper size (int16 shards, 32 kHz, 10 s clips, 6,144 clips):

  1. pre-training through the real code path (`blat_core.train.pretrain.pretrain`: the stage's loader, tokenizer,
     step, schedule and logging), eager vs compiled (BLAT_COMPILE=1), with the share of step time spent
     waiting for data; and the loader alone (clips/s);
  2. frame-feature extraction (`blat_core.bootstrap.features.extract`, the `features` stage's work) clips/s;
  3. batched beam-3 synthesis (`blat_core.bootstrap.synthesis.caption_frames`) clips/s;
  4. captioner training (`blat_core.train.captioner` one epoch) clips/s;
  5. the `gpu` tests (`pytest -m gpu tests/test_gpu.py`).

Writes `<out>/gpu_check_<gpu>.json` and prints one summary line per figure. Random weights (speed does not
depend on them); a random captioner never emits <end>, so synthesis always decodes the full 20 tokens.
`--dry-run` runs the same code at toy sizes on the CPU (CI runs it). Needs only the checkout and torch,
transformers, h5py, pyarrow, numpy, pyyaml and pytest: run it with `benchmarks/gpu_check.sh`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blat_core.data import batching  # noqa: E402
from blat_core.data.shards import ShardWriter  # noqa: E402
from blat_core.distributed import Ranks  # noqa: E402
from blat_core.train import checkpointing, loop, sampling  # noqa: E402

SIZES = {
    "paper": {"clips": 6144, "seconds": 10.0, "rate": 32000, "channels": [64, 128, 256, 512, 1024, 2048],
              "text": (8, 512, 8, 2048), "embed": 1024, "batch": 128, "steps": 40, "log_every": 10, "val_clips": 64,
              "beam_clips": 1024, "beam_batch": 128, "caption_clips": 4096, "caption_batch": 64, "workers": 8},
    "dry": {"clips": 48, "seconds": 1.0, "rate": 16000, "channels": [4, 8, 16, 32, 64, 64], "text": (2, 32, 2, 64),
            "embed": 16, "batch": 8, "steps": 4, "log_every": 2, "val_clips": 8, "beam_clips": 8, "beam_batch": 4,
            "caption_clips": 16, "caption_batch": 8, "workers": 0},
}  # fmt: skip
WORDS = (
    "a dog barks while rain falls on the roof and a man speaks near cars engines birds sing loudly softly in "
    "distance then music plays bell rings water runs wind blows people talk baby cries"
).split()


# ---------------------------------------------------------------- generated inputs
def make_prepared(folder: Path, size: dict) -> list[str]:
    """A prepared dataset in the pipeline's format: int16 clips in contiguous shards, split `train` (with
    one caption) and the last `val_clips` clips split `val` (with five). Returns the training ids."""
    folder.mkdir(parents=True)
    samples = int(size["seconds"] * size["rate"])
    noise = (3000 * np.random.default_rng(0).standard_normal(samples * 4)).astype(np.int16)
    writer = ShardWriter(folder, 256 * 2**20, {"sample_rate": size["rate"]})
    rows = {k: [] for k in ("audio_id", "split", "captions", "trainable", "shard", "offset", "num_samples")}
    rng = np.random.default_rng(1)
    for i in range(size["clips"]):
        start = int(rng.integers(0, len(noise) - samples))
        shard, offset = writer.add(f"clip{i:06d}", noise[start : start + samples])
        val = i >= size["clips"] - size["val_clips"]
        rows["audio_id"].append(f"clip{i:06d}")
        rows["split"].append("val" if val else "train")
        rows["captions"].append([caption(rng) for _ in range(5 if val else 1)])
        rows["trainable"].append(not val)
        rows["shard"].append(shard)
        rows["offset"].append(offset)
        rows["num_samples"].append(samples)
    writer.flush()
    table = pa.table(rows).replace_schema_metadata({"blat.dataset": "gpu_check", "blat.sample_rate": str(size["rate"])})
    pq.write_table(table, folder / "manifest.parquet")
    return [a for a, s in zip(rows["audio_id"], rows["split"], strict=True) if s == "train"]


def caption(rng) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(8, 16))))


def make_text_folder(folder: Path, size: dict) -> Path:
    """A BERT config of the paper's text tower (BERT-medium) or a toy one, and a WordPiece vocabulary."""
    from transformers import BertConfig, BertTokenizerFast

    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    layers, hidden, heads, ffn = size["text"]
    BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
               intermediate_size=ffn, max_position_embeddings=512).save_pretrained(str(folder))  # fmt: skip
    return folder


def build_model(size: dict, text_folder: Path):
    from blat_core.models.blat_model import build_biencoder

    torch.manual_seed(0)
    return build_biencoder({
        "audio": {"name": "cnn14", "sample_rate": size["rate"], "channels": size["channels"], "num_classes": 0},
        "text": {"name": "bert", "folder": str(text_folder), "pretrained": False, "max_tokens": 30},
        "embed_dim": size["embed"], "logit_scale_max": None, "sample_rate": size["rate"],
    })  # fmt: skip


# ---------------------------------------------------------------- 1. pre-training
class StepRates(logging.Handler):
    """Collects the training loop's 'N samples/s (P% waiting for data)' log lines."""

    PATTERN = re.compile(r"([\d.]+) samples/s \((\d+)% waiting for data\)")

    def __init__(self):
        super().__init__()
        self.windows: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self.PATTERN.search(record.getMessage())
        if match:
            self.windows.append((float(match.group(1)), float(match.group(2)) / 100))


def pretrain_rate(size: dict, prepared: Path, text_folder: Path, work: Path, device, compiled: bool) -> dict:
    """Pairs/s and the data-wait share of `pretrain` on the generated stage-1 data (the windows after the
    first, which holds the compilation and the loader's start)."""
    from blat_core.data.pairs import RetrievalSet, synthetic_pairs
    from blat_core.models.text.encoder import Tokenizer
    from blat_core.train.pretrain import PretrainParams, StageSchedule, pretrain

    name = "compiled" if compiled else "eager"
    table = pq.read_table(prepared / "manifest.parquet", columns=["audio_id", "split", "captions"]).to_pydict()
    captions = [(a, c[0]) for a, s, c in zip(table["audio_id"], table["split"], table["captions"], strict=True)
                if s == "train"]  # fmt: skip
    pq.write_table(pa.table({"audio_id": [a for a, _ in captions], "caption": [c for _, c in captions]}),
                   work / "synthetic.parquet")  # fmt: skip
    steps = size["steps"]
    schedule = StageSchedule(steps=steps, warmup_steps=2, val_every=steps)
    params = PretrainParams(batch_size=size["batch"], lr=1.0e-4, weight_decay=0.0, max_seconds=10.0,
                            embed_dim=size["embed"], log_every=size["log_every"], checkpoint_every=10**9,
                            eval_batch_size=64, stage1=schedule)  # fmt: skip
    os.environ["BLAT_COMPILE"] = "1" if compiled else "0"
    rates = StepRates()
    logging.getLogger("blat_core.train.loop").addHandler(rates)
    try:
        model = build_model(size, text_folder).to(device)
        started = time.perf_counter()
        pretrain(model, Tokenizer(text_folder, 30), synthetic_pairs(prepared, work / "synthetic.parquet"),
                 RetrievalSet.from_split(prepared, "val"), params, "stage1", device, Ranks(),
                 checkpointing.Checkpointer(work / f"scratch_{name}", name), None, size["workers"])  # fmt: skip
        wall = time.perf_counter() - started
    finally:
        logging.getLogger("blat_core.train.loop").removeHandler(rates)
        os.environ.pop("BLAT_COMPILE", None)
    steady = rates.windows[1:] or rates.windows
    return {"pairs_per_s": round(float(np.median([r for r, _ in steady])), 1),
            "data_wait": round(float(np.median([w for _, w in steady])), 3),
            "windows": rates.windows, "steps": steps, "wall_s": round(wall, 1)}  # fmt: skip


def loader_rate(size: dict, prepared: Path, device, batches: int) -> dict:
    """Clips/s of the pre-training loader alone (int16 reads, padding, pinned transfer and conversion)."""
    from blat_core.data.pairs import PairClips, caption_pairs

    pairs = caption_pairs([prepared])
    plan = [[(int(i), (0, step, k)) for k, i in enumerate(sampling.epoch_batches(0, step, len(pairs), size["batch"]))]
            for step in range(batches)]  # fmt: skip
    clips = PairClips(pairs, max_samples=int(10.0 * size["rate"]))
    started, count = None, 0
    for index, (waves, _, _) in enumerate(batching.loader(clips, plan, size["workers"], device)):
        batching.to_device_float(waves, device)
        if index == 1:  # the first batch holds the workers' start
            _sync(device)
            started, count = time.perf_counter(), 0
        count += len(waves)
    _sync(device)
    return {"clips_per_s": round(count / (time.perf_counter() - started), 1), "batches": batches}


# ---------------------------------------------------------------- 2-4. features, synthesis, captioner
def features_rate(size: dict, prepared: Path, text_folder: Path, work: Path, device) -> dict:
    from blat_core.bootstrap.features import FeaturesParams, extract
    from blat_core.data.prepared import PreparedDataset

    tower = build_model(size, text_folder).audio_encoder.to(device).eval()
    summary = extract(tower, PreparedDataset(prepared), work / "features", FeaturesParams([], 64, 256), device,
                      Ranks(), size["workers"])  # fmt: skip
    return {"clips_per_s": round(summary["clips"] / summary["seconds"], 1), "clips": summary["clips"]}


def _frames(count: int, size: dict) -> list[np.ndarray]:
    frames = int(size["seconds"] * size["rate"] / 320 / 32)  # one frame per 32 hops of 320 samples
    rng = np.random.default_rng(2)
    return [rng.standard_normal((frames, size["channels"][-1])).astype(np.float16) for _ in range(count)]


def synthesis_rate(size: dict, device) -> dict:
    from blat_core.models.captioner.inference import caption_frames
    from blat_core.models.captioner.io import LoadedCaptioner
    from blat_core.models.captioner.model import Captioner
    from blat_core.models.captioner.vocab import Vocabulary

    torch.manual_seed(0)
    vocab = Vocabulary.build([" ".join(WORDS)])
    classes = [(f"/m/{i}", f"class {i}") for i in range(527)]
    model = Captioner(feature_dim=size["channels"][-1], vocab_size=len(vocab), num_tags=527).to(device).eval()
    captioner = LoadedCaptioner(model, vocab, classes, "random", 3, 20)
    arrays, tags = _frames(size["beam_clips"], size), [[classes[i % 527][0]] for i in range(size["beam_clips"])]
    batch = size["beam_batch"]
    caption_frames(captioner, arrays[:batch], tags[:batch], 3, 20, device)  # warm-up
    _sync(device)
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(arrays), batch):
            caption_frames(captioner, arrays[start : start + batch], tags[start : start + batch], 3, 20, device)
    _sync(device)
    return {"clips_per_s": round(len(arrays) / (time.perf_counter() - started), 1), "beam": 3, "batch": batch}


def captioner_rate(size: dict, device) -> dict:
    from blat_core.models.captioner.model import Captioner
    from blat_core.models.captioner.vocab import Vocabulary
    from blat_core.train.captioner import CaptionData, CaptionerParams, caption_step, token_batch

    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    captions = [[caption(rng)] for _ in range(size["caption_clips"])]
    vocab = Vocabulary.build([c[0] for c in captions])
    data = CaptionData([str(i) for i in range(len(captions))], _frames(len(captions), size),
                       np.eye(527, dtype=np.float32)[rng.integers(0, 527, len(captions))], captions)  # fmt: skip
    model = Captioner(feature_dim=size["channels"][-1], vocab_size=len(vocab), num_tags=527).to(device)
    p = CaptionerParams(epochs=1, batch_size=size["caption_batch"], lr=5.0e-4, weight_decay=1.0e-6, warmup_steps=10,
                        final_lr=5.0e-7, label_smoothing=0.1, teacher_forcing_start=1.0, teacher_forcing_end=0.7,
                        grad_clip=1.0, average_last=1, beam=3, max_tokens=20)  # fmt: skip
    pairs = [(i, c[0]) for i, c in enumerate(captions)]
    optimizer = loop.adam(model.parameters(), p.lr, p.weight_decay, device)
    steps = len(pairs) // p.batch_size
    def run(first: int, count: int) -> None:  # `count` training steps with scheduled sampling on
        for step in range(first, first + count):
            batch = sampling.epoch_batches(p.seed, step, len(pairs), p.batch_size)
            frames, lengths, tags = data.batch([pairs[i][0] for i in batch], device)
            tokens = token_batch(vocab, [pairs[i][1] for i in batch], device)
            caption_step(model, optimizer, vocab, frames, lengths, tags, tokens, 0.7, p, device)

    run(0, 2)  # warm-up
    _sync(device)
    started = time.perf_counter()
    run(steps, steps)
    _sync(device)
    seconds = time.perf_counter() - started
    return {"clips_per_s": round(steps * p.batch_size / seconds, 1), "batch": p.batch_size, "steps": steps}


# ---------------------------------------------------------------- 5. the gpu tests
def gpu_tests() -> dict:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu", "tests/test_gpu.py"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error)", result.stdout)}
    return {"rc": result.returncode, **counts, "tail": result.stdout.strip().splitlines()[-1:]}


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU (what CI runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="folder for the generated data (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    size = SIZES["dry" if args.dry_run else "paper"]
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --dry-run")
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu-dry-run"
    report = {"gpu": gpu, "torch": torch.__version__, "dry_run": args.dry_run, "sizes": size}
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        make_prepared(work / "prepared", size)
        text_folder = make_text_folder(work / "text", size)
        report["data_seconds"] = round(time.perf_counter() - started, 1)
        eager = pretrain_rate(size, work / "prepared", text_folder, work, device, compiled=False)
        compiled = pretrain_rate(size, work / "prepared", text_folder, work, device, compiled=True)
        ratio = round(compiled["pairs_per_s"] / eager["pairs_per_s"], 3)
        report["pretrain"] = {"eager": eager, "compiled": compiled, "compiled_over_eager": ratio}
        batches = min(40, size["clips"] // size["batch"])
        report["loader"] = loader_rate(size, work / "prepared", device, batches)
        report["features"] = features_rate(size, work / "prepared", text_folder, work, device)
    report["synthesis"] = synthesis_rate(size, device)
    report["captioner"] = captioner_rate(size, device)
    report["gpu_tests"] = gpu_tests()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu_check_{re.sub(r'[^A-Za-z0-9]+', '_', gpu).strip('_').lower()}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"pretrain (real stage path, batch {size['batch']}): eager {eager['pairs_per_s']} pairs/s, compiled "
          f"{compiled['pairs_per_s']} pairs/s ({report['pretrain']['compiled_over_eager']}x); data wait "
          f"{eager['data_wait']:.1%} eager, {compiled['data_wait']:.1%} compiled")  # fmt: skip
    print(f"loader: {report['loader']['clips_per_s']} clips/s")
    print(f"features: {report['features']['clips_per_s']} clips/s")
    print(f"synthesis (beam 3, batch {size['beam_batch']}): {report['synthesis']['clips_per_s']} clips/s")
    print(f"captioner training (batch {size['caption_batch']}): {report['captioner']['clips_per_s']} clips/s")
    print(f"gpu tests: {report['gpu_tests']['tail']} (rc {report['gpu_tests']['rc']})")
    print(f"wrote {path}")
    return 0 if report["gpu_tests"]["rc"] in (0, 5) else 1


if __name__ == "__main__":
    sys.exit(main())
