"""One contrastive step on a fixed global batch of 8, run by 1 or N processes (python -m blat_core.app.launch).

Rank 0 writes {"loss", "weights"} after the step (SGD, lr 1: the weight change is the gradient).
Usage: ddp_step.py OUT TEXT_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from blat_core.data.pairs import Pairs
from blat_core.distributed import Ranks
from blat_core.models.biencoder import ContrastiveLoss
from blat_core.models.text.encoder import Tokenizer
from blat_core.train.pretrain import StepParts, contrastive_step, local_batch_size
from tests.helpers.tiny_biencoder import tiny_biencoder

CAPTIONS = [
    "a dog barks twice",
    "rain falls on a roof",
    "a siren wails",
    "birds chirp in the morning",
    "an engine idles",
    "people talk in a hall",
    "a bell rings loudly",
    "water runs from a tap",
]


def main() -> None:
    out, text_folder = Path(sys.argv[1]), Path(sys.argv[2])
    ranks = Ranks.from_env()
    device = ranks.start(torch.device("cpu"))
    torch.manual_seed(0)
    model = tiny_biencoder(text_folder).eval()  # eval: no dropout masks, BatchNorm on running statistics
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([16000, 12000, 16000, 9000, 16000, 14000, 11000, 16000])
    waves = (torch.randn(8, 16000, generator=generator) * 3000).to(torch.int16)
    for row, length in enumerate(lengths):
        waves[row, length:] = 0
    local = local_batch_size(8, ranks)
    rows = slice(ranks.rank * local, (ranks.rank + 1) * local)
    batch = (waves[rows, : int(lengths[rows].max())], lengths[rows], torch.arange(8)[rows])
    forward = model if ranks.world == 1 else torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    pairs = Pairs(items=[(0, f"clip{i}", c) for i, c in enumerate(CAPTIONS)])
    parts = StepParts(forward, ContrastiveLoss(), optimizer, Tokenizer(text_folder, 30), pairs, device)
    values = contrastive_step(parts, batch)
    if ranks.is_main:
        torch.save({"loss": float(values["loss"]), "weights": model.state_dict()}, out)
    ranks.stop()


if __name__ == "__main__":
    main()
