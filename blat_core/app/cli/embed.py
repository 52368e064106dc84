"""`blat embed`: every audio file under a folder into a Parquet index (deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from blat_core.app.cli.common import AudioFolder, device_of, embed_folder, load_blat_folder


def add_parser(add, audio_options) -> None:
    sub = add("embed", run, "embed every audio file under a folder into a Parquet index (deterministic)")
    sub.add_argument("audio_dir", help="folder of audio files (searched recursively; any sample rate, mixed to mono)")
    sub.add_argument("--model", required=True, help="exported BLAT model folder (e.g. data/models/blat_stage2)")
    sub.add_argument("--out", required=True, help="the index to write (.parquet)")
    audio_options(sub)


def run(args) -> None:
    from blat_core.atomic import atomic_path
    from blat_core.models.checkpoints import file_digest

    device = device_of(args.device)
    model, _ = load_blat_folder(args.model, device)
    folder = AudioFolder.scan(args.audio_dir)
    paths, seconds, counts, embeddings = embed_folder(model, folder, args.window_seconds, args.batch_size, device)
    table = pa.table({
        "path": pa.array(paths, pa.string()),
        "seconds": pa.array(seconds, pa.float32()),
        "windows": pa.array(counts, pa.int32()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1), pa.float32()),
                                                        embeddings.shape[1]),
    })  # fmt: skip
    meta = {
        "model": str(Path(args.model).resolve()),
        "model_digest": file_digest(Path(args.model) / "blat.safetensors"),
        "audio_root": str(Path(args.audio_dir).resolve()),
        "window_seconds": args.window_seconds,
        "skipped": dict(folder.skipped),
    }
    table = table.replace_schema_metadata({"blat": json.dumps(meta)})
    with atomic_path(args.out) as tmp:
        pq.write_table(table, tmp)
    print(f"embedded {len(paths)} files into {args.out} ({embeddings.shape[1]}-d); {folder.summary()}")
