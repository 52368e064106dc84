"""Stage `table3`: the paper's Table 3 in miniature — captions on AudioCaps test from the captioner
without tags, with tags, and "human" (each reference scored against the other four).

DVC runs: python stages/table3.py --audiocaps data/prepared/audiocaps --tags metrics/captioner_tags.json
          --notags metrics/captioner_notags.json --out metrics/captioning_synthetic.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from blat_core.atomic import write_json
from blat_core.data.prepared import PreparedDataset
from blat_core.eval.metrics.captions import human_scores
from blat_core.params import load_section
from blat_core.runtime import run_main, setup_logging
from blat_core.train.captioner import CaptionerParams

log = logging.getLogger("table3")
COLUMNS = ("bleu_4", "rouge_l", "meteor", "cider", "spice", "spider", "fense")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audiocaps", type=Path, required=True)
    parser.add_argument("--tags", type=Path, required=True)
    parser.add_argument("--notags", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    models = load_section(args.params, "captioner", CaptionerParams).local_models()
    references = {r["audio_id"]: list(r["captions"]) for r in PreparedDataset(args.audiocaps).evaluation_rows("test")}
    rows = {
        "without_tag": json.loads(args.notags.read_text())["captioner"]["notags"]["audiocaps_test"],
        "with_tag": json.loads(args.tags.read_text())["captioner"]["tags"]["audiocaps_test"],
        "human": human_scores(references, models),
    }
    write_json(args.out, {"captioning_synthetic": rows})
    for name, scores in rows.items():
        log.info(
            "%-11s %s", name, "  ".join(f"{c} {'n/a' if scores[c] is None else f'{scores[c]:.3f}'}" for c in COLUMNS)
        )


if __name__ == "__main__":
    run_main(main)
