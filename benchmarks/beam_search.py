"""Benchmark: batched beam search vs one clip at a time (the same `beam_search`, batch of 1), in one run.

    python benchmarks/beam_search.py [--clips 64] [--batch 64] [--device cpu]

Model at the paper's captioner size (SPEC §2) with random weights; frames as the demo's CNN14 gives
them (4 s at 16 kHz -> 12 frames of 256 dims). Prints clips/s of both and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from blat_core.models.captioner.beam_search import beam_search
from blat_core.models.captioner.model import Captioner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--feature-dim", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=400)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = Captioner(args.feature_dim, args.vocab, num_tags=527).to(device).eval()
    with torch.no_grad():
        model.output.bias[2] += 1.0  # captions of a realistic length (about 8-12 words) instead of 20
    frames = torch.randn(args.clips, args.frames, args.feature_dim, device=device)
    lengths = torch.full((args.clips,), args.frames)
    tags = (torch.rand(args.clips, 527, device=device) > 0.995).float()

    def batched() -> list:
        out = []
        for i in range(0, args.clips, args.batch):
            out += beam_search(
                model, frames[i : i + args.batch], lengths[i : i + args.batch], tags[i : i + args.batch], 1, 2
            )[0]
        return out

    def one_at_a_time() -> list:
        return [
            beam_search(model, frames[i : i + 1], lengths[i : i + 1], tags[i : i + 1], 1, 2)[0][0]
            for i in range(args.clips)
        ]

    batched()  # warm-up
    timings = {}
    for name, run in (("one_at_a_time", one_at_a_time), ("batched", batched)):
        started = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - started
        words = sum(len(r) for r in result) / len(result)
        print(f"{name:>14}: {args.clips / timings[name]:8.1f} clips/s  ({words:.1f} words per caption)")
    print(
        f"speed-up batched / one-at-a-time: {timings['one_at_a_time'] / timings['batched']:.1f}x "
        f"on {device} ({torch.get_num_threads()} threads), batch {args.batch}"
    )


if __name__ == "__main__":
    main()
