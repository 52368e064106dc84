"""Stage `features@<dataset>`: CNN14 frame embeddings (float16) of every clip of a prepared dataset.

Several processes split the clips when launched with torchrun (each writes its own shards).
DVC runs: python stages/features.py --prepared data/prepared/<dataset> --encoder data/models/tagger
          --out data/features/<dataset>
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core import compute
from blat_core.bootstrap.features import FeaturesParams, extract
from blat_core.data.prepared import PreparedDataset
from blat_core.distributed import Ranks
from blat_core.models.audio.encoder import load_audio_encoder
from blat_core.params import ParamsError, load_section
from blat_core.runtime import loader_workers, run_main, setup_logging

log = logging.getLogger("features")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", type=Path, required=True)
    parser.add_argument("--encoder", type=Path, required=True, help="model folder of the tagger stage")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    params = load_section(args.params, "features", FeaturesParams)
    ranks = Ranks.from_env()
    device = ranks.start(compute.pick_device())
    prepared = PreparedDataset(args.prepared)
    model, _ = load_audio_encoder(args.encoder)
    if model.sample_rate != prepared.sample_rate:
        raise ParamsError(
            f"{args.encoder} expects {model.sample_rate} Hz audio, {args.prepared} is at {prepared.sample_rate} Hz"
        )
    summary = extract(model.to(device), prepared, args.out, params, device, ranks, loader_workers())
    if ranks.rank == 0:
        log.info("%s: %d clips (this rank), dim %d", prepared.name, summary["clips"], summary["dim"])
    ranks.stop()


if __name__ == "__main__":
    run_main(main)
