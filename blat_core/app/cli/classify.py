"""`blat classify`: zero-shot classification of audio files into the labels of a text file."""

from __future__ import annotations

from pathlib import Path

from blat_core.app.cli.common import (
    AudioFolder,
    UsageError,
    check_index_model,
    device_of,
    embed_folder,
    embed_texts,
    load_blat_folder,
    read_index,
    read_text_lines,
    write_rows,
)


def add_parser(add, audio_options) -> None:
    sub = add("classify", run, "zero-shot classification of audio files into the labels of a text file")
    sub.add_argument("audio", help="folder of audio files, or an index written by `blat embed` with the same model")
    sub.add_argument("--labels", required=True, help="text file, one class name per line ('_' reads as a space)")
    sub.add_argument("--model", required=True, help="exported BLAT model folder")
    sub.add_argument("--prompt", default="{}", help="template around each label, e.g. 'the sound of {}'")
    sub.add_argument("--out", help="CSV to write (default: standard output)")
    audio_options(sub)


def read_labels(path: str | Path) -> list[str]:
    labels = [line.strip() for line in read_text_lines(path, "labels file")]
    labels = [line for line in labels if line and not line.startswith("#")]
    if len(labels) < 2:
        raise UsageError(f"{path} holds {len(labels)} label(s): zero-shot classification needs at least 2")
    return labels


def run(args) -> None:
    from blat_core.eval.classification import label_text

    labels = read_labels(args.labels)
    device = device_of(args.device)
    model, tokenizer = load_blat_folder(args.model, device)
    source = Path(args.audio)
    text = embed_texts(model, tokenizer, [label_text(label, args.prompt) for label in labels], device)
    if source.suffix == ".parquet":
        paths, audio, meta = read_index(source)
        check_index_model(source, meta, audio, args.model, text)
        skipped = "from an index"
    else:
        folder = AudioFolder.scan(source)
        paths, _, _, audio = embed_folder(model, folder, args.window_seconds, args.batch_size, device)
        skipped = folder.summary()
    scores = audio @ text.T  # cosine: both sides are L2-normalised
    best = scores.argmax(axis=1)
    rows = [[p, labels[b], f"{scores[i, b]:.4f}"] for i, (p, b) in enumerate(zip(paths, best, strict=True))]
    write_rows(args.out, ["path", "label", "score"], rows)
    print(f"classified {len(rows)} files into {len(labels)} labels -> {args.out or 'stdout'}; {skipped}")
