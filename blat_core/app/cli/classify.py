"""`blat classify`: zero-shot classification of audio files into the labels of a text file, or, for a fine-tuned
model folder (the `finetuned@<name>` stage: a classifier beside the BLAT model), into its own classes."""

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
    sub = add("classify", run, "classify audio files: zero-shot into a labels file, or by a fine-tuned classifier")
    sub.add_argument("audio", help="folder of audio files, or an index written by `blat embed` with the same model")
    sub.add_argument("--labels", help="text file, one class name per line ('_' reads as a space): zero-shot; "
                     "leave it out for a fine-tuned model folder (data/finetuned/<name>) to use its classifier")
    sub.add_argument("--model", required=True, help="BLAT model folder (data/models/<name>, data/finetuned/<name>)")
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
    from blat_core.models.classifier import has_classifier

    if args.labels is None:
        if not has_classifier(args.model):
            raise UsageError(f"{args.model} has no fine-tuned classifier (classifier.json): give --labels for "
                             "zero-shot classification, or a data/finetuned/<name> folder")  # fmt: skip
        return run_classifier(args)
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


def run_classifier(args) -> None:
    """The fine-tuned head's classes: per file the mean of its windows' probabilities; single-label sets write the
    best class, multi-label sets every class at 0.5 or more (the best one when none is)."""
    from blat_core.models.checkpoints import CheckpointError
    from blat_core.models.classifier import load_classifier

    source = Path(args.audio)
    if source.suffix == ".parquet":
        raise UsageError(f"{source} is an embedding index; a fine-tuned classifier reads the audio files (its head "
                         "sits on the tower before the projection an index holds)")  # fmt: skip
    device = device_of(args.device)
    try:
        model = load_classifier(args.model, device)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    folder = AudioFolder.scan(source)
    paths, _, _, probs = embed_folder(model, folder, args.window_seconds, args.batch_size, device, mean=True)
    rows = []
    for path, row in zip(paths, probs, strict=True):
        best = int(row.argmax())
        chosen = [i for i in range(len(row)) if row[i] >= 0.5] if model.multi_label else []
        names = ";".join(model.classes[i] for i in (chosen or [best]))
        rows.append([path, names, f"{row[best]:.4f}"])
    write_rows(args.out, ["path", "label", "score"], rows)
    kind = "multi-label" if model.multi_label else "single-label"
    print(f"classified {len(rows)} files by the fine-tuned {kind} classifier ({len(model.classes)} classes) -> "
          f"{args.out or 'stdout'}; {folder.summary()}")
