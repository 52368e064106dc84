"""`blat import-blat`: the authors' BLAT checkpoint (blat_cnn14_bertm.pth) as a model folder."""

from __future__ import annotations

from blat_core.app.cli.common import UsageError, positive_int


def add_parser(add, audio_options) -> None:
    sub = add("import-blat", run, "convert the authors' BLAT checkpoint (blat_cnn14_bertm.pth) into a "
              "model folder")  # fmt: skip
    sub.add_argument("checkpoint", help="the .pth file (weights under 'state_dict')")
    sub.add_argument("--text-folder", required=True, help="local BERT-medium folder (config.json + tokenizer files)")
    sub.add_argument("--out", required=True, help="model folder to write (e.g. data/models/blat_official)")
    sub.add_argument("--sample-rate", type=int, help="only for a file without front-end buffers (they imply it)")
    sub.add_argument("--max-tokens", type=positive_int, default=30)
    sub.add_argument("--logit-scale-max", type=float, default=None, help="cap for the logit scale (default: none, "
                     "as the reference)")  # fmt: skip


def run(args) -> None:
    from blat_core.models.checkpoints import CheckpointError
    from blat_core.models.official import import_official_blat

    try:
        dropped = import_official_blat(args.checkpoint, args.text_folder, args.out, args.sample_rate, args.max_tokens,
                                       args.logit_scale_max)  # fmt: skip
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    print(f"imported {args.checkpoint} -> {args.out} (dropped {len(dropped)} keys: {', '.join(dropped)})")
