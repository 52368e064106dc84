"""`blat`: embed, search, classify and caption audio with exported models; import official checkpoints;
check a machine (`blat doctor`). Run `blat <command> --help` for each command's options.

    blat embed AUDIO_DIR --model data/models/blat_stage2 --out index.parquet
    blat search "a dog barks" --index index.parquet -k 10
    blat classify AUDIO_DIR --labels labels.txt --model data/models/blat_stage2 --out predictions.csv
    blat caption AUDIO_DIR --captioner data/models/captioner_tags --tagger data/models/tagger
    blat serve --index index.parquet --audio-root AUDIO_DIR   # a local search page at http://127.0.0.1:8000/
    blat export data/models/blat_stage2 --format onnx --out exported/blat_stage2
    blat mteb exported/blat_stage2 --benchmark "MAEB(v1)" --out results/maeb   # needs the Hugging Face hub
    blat import-blat blat_cnn14_bertm.pth --text-folder /models/bert-medium --out data/models/blat_official
    blat fetch esc50 --root /data/esc50
    blat doctor
"""

from __future__ import annotations

import argparse
import logging
import sys

from blat_core.app.cli import caption, classify, doctor, embed, export, fetch, import_blat, mteb, search, serve
from blat_core.app.cli.common import UsageError, positive_int, positive_number, read_index  # noqa: F401  (the tests' entry points)
from blat_core.models.inference import windows  # noqa: F401
from blat_core.params import ParamsError

COMMANDS = (embed, search, classify, caption, serve, export, mteb, import_blat, fetch, doctor)


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one line (the command, what is wrong, where help is), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="blat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped file and model load")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text):  # each command module calls this from its add_parser
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def audio_options(sub, batch=16):
        sub.add_argument("--batch-size", type=positive_int, default=batch, help=f"windows per batch (default {batch})")
        sub.add_argument(
            "--window-seconds",
            type=positive_number,
            default=10.0,
            help="clips longer than this are embedded as the mean over fixed windows (default 10)",
        )
        sub.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when present)")

    for module in COMMANDS:
        module.add_parser(add, audio_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error, already printed on one line (2)
        return stop.code if isinstance(stop.code, int) else 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return args.handler(args) or 0
    except (UsageError, ParamsError) as error:
        print(f"blat {args.command}: error: {error}", file=sys.stderr)
        return 2


