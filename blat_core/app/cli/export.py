"""`blat export`: a pipeline model folder as a self-contained folder (config.json, model.safetensors, tokenizer
files, a README.md model card with this run's metrics), optionally with ONNX audio and text towers."""

from __future__ import annotations

import time
from pathlib import Path

from blat_core.app.cli.common import UsageError


def add_parser(add, audio_options) -> None:
    sub = add("export", run, "export a BLAT model folder for use without the pipeline (model card; ONNX)")
    sub.add_argument("model", help="the pipeline's model folder (e.g. data/models/blat_stage2)")
    sub.add_argument("--out", required=True, help="folder to write (replaced if it exists)")
    sub.add_argument("--format", choices=("folder", "onnx"), default="folder",
                     help="folder: config.json + model.safetensors + tokenizer + README.md; onnx: the same plus "
                          "audio.onnx and text.onnx, checked against PyTorch (default folder)")  # fmt: skip
    sub.add_argument("--project", default=".", help="the DVC project the model came from (default: here): its "
                     "dvc.lock, params.yaml and metrics/ fill the model card")  # fmt: skip
    sub.add_argument("--metrics", help="metrics folder (default: PROJECT/metrics)")
    sub.add_argument("--name", help="the model's name in the metrics files (default: the folder's name)")
    sub.add_argument("--license", default="apache-2.0", help="the card's license field (default apache-2.0; set "
                     "the one your training data allows)")  # fmt: skip


def run(args) -> None:
    from blat_core.app.model_card import build_card
    from blat_core.models import portable
    from blat_core.models.checkpoints import CheckpointError

    model = Path(args.model)
    if not (model / "blat.json").is_file():
        raise UsageError(f"{model} is not a BLAT model folder (no blat.json): give e.g. data/models/blat_stage2")
    project = Path(args.project)
    metrics = Path(args.metrics) if args.metrics else project / "metrics"
    name = args.name or model.resolve().name
    onnx = args.format == "onnx"
    card = build_card(model, name, project, metrics, onnx, args.license)
    try:
        out = portable.export_folder(model, args.out, card, {"name": name})
        loaded = portable.load_model(out)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    print(f"exported {model} -> {out} (config.json, model.safetensors, tokenizer, README.md)")
    if onnx:
        started = time.perf_counter()
        paths = portable.export_onnx(loaded, out)
        worst = portable.check_onnx(loaded, out)
        print(f"ONNX: {paths['audio'].name}, {paths['text'].name} in {time.perf_counter() - started:.0f} s; "
              f"onnxruntime vs PyTorch max |difference|: audio {worst['audio']:.2e}, text {worst['text']:.2e}")
