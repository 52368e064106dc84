"""`blat`: embed, search, classify and caption audio with exported models; import official checkpoints;
check a machine (`blat doctor`). Run `blat <command> --help` for each command's options.

    blat embed AUDIO_DIR --model data/models/blat_stage2 --out index.parquet
    blat search "a dog barks" --index index.parquet -k 10
    blat classify AUDIO_DIR --labels labels.txt --model data/models/blat_stage2 --out predictions.csv
    blat caption AUDIO_DIR --captioner data/models/captioner_tags --tagger data/models/tagger
    blat import-blat blat_cnn14_bertm.pth --text-folder /models/bert-medium --out data/models/blat_official
    blat doctor
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from blat_core.models.inference import embed_waves, windows
from blat_core.params import ParamsError

log = logging.getLogger("blat")


class UsageError(Exception):
    """A bad path, file or option: printed as one line, exit status 2."""


# ---------------------------------------------------------------- audio files
CHUNK_FILES = 256  # files decoded and held in memory at a time: a folder of any size streams through


@dataclass
class AudioFolder:
    """The audio files of a folder (recursive, sorted), read a chunk at a time, resampled to one rate;
    unreadable files are skipped and counted by reason."""

    root: Path
    files: list[Path]
    skipped: Counter = field(default_factory=Counter)

    @classmethod
    def scan(cls, root: str | Path) -> AudioFolder:
        root = Path(root)
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder of audio files")
        from blat_core.data.sources import AUDIO_EXTENSIONS, list_audio

        files, skipped = list_audio(root)  # regular files only: a FIFO or a link loop is skipped and counted
        if not files:
            raise UsageError(f"{root} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
                             + (f"; skipped {dict(skipped)}" if skipped else ""))  # fmt: skip
        return cls(root, [root / f for f in files], skipped)

    def chunks(self, sample_rate: int, desc: str = "audio files"):
        """Yield ([relative paths], [int16 waves]) for each chunk's readable files, with a progress bar;
        fails after the last chunk when no file at all could be read."""
        from blat_core.data.prepare import load_clip

        read, size = 0, CHUNK_FILES
        with tqdm(total=len(self.files), desc=desc, mininterval=2.0, disable=len(self.files) < 50) as bar:
            for start in range(0, len(self.files), size):
                names, waves = [], []
                for path in self.files[start : start + size]:
                    wave, reason, detail = load_clip(str(path), sample_rate, float("-inf"))
                    if wave is None:
                        self.skipped[reason] += 1
                        log.warning("skipped %s: %s (%s)", path, reason, detail)
                    else:
                        names.append(str(path.relative_to(self.root)))
                        waves.append(wave)
                read += len(names)
                if names:
                    yield names, waves
                bar.update(min(size, len(self.files) - start))
        if read == 0:
            raise UsageError(f"none of the {len(self.files)} audio files under {self.root} could be read: "
                             f"{dict(self.skipped)}")  # fmt: skip

    def summary(self) -> str:
        total = sum(self.skipped.values())
        return f"skipped {total}{f' {dict(self.skipped)}' if total else ''}"


def embed_folder(model, folder: AudioFolder, window_seconds: float, batch_size: int, device):
    """(paths, seconds, windows per file, (files, E) embeddings) of a folder, a chunk of files at a time."""
    rate = model.audio_encoder.sample_rate
    window = int(window_seconds * rate)
    paths, seconds, counts, parts = [], [], [], []
    for names, waves in folder.chunks(rate, desc="embedding"):
        parts.append(embed_waves(model, waves, window, batch_size, device, progress=False))
        paths += names
        seconds += [len(w) / rate for w in waves]
        counts += [len(windows(w, window)) for w in waves]
    return paths, seconds, counts, np.concatenate(parts)


# ---------------------------------------------------------------- models
def _device(name: str | None) -> torch.device:
    from blat_core.compute import pick_device

    return torch.device(name) if name else pick_device()


def _load_blat(folder: str | Path, device):
    from blat_core.models.blat_model import load_blat
    from blat_core.models.checkpoints import CheckpointError

    folder = Path(folder)
    if not (folder / "blat.json").is_file():
        raise UsageError(f"{folder} is not a BLAT model folder (no blat.json): give e.g. data/models/blat_stage2")
    try:
        model, tokenizer, _ = load_blat(folder, device)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    return model, tokenizer


def _texts(model, tokenizer, texts: list[str], device) -> np.ndarray:
    from blat_core.models.embed import embed_captions

    return embed_captions(model, tokenizer, texts, 64, device).numpy()


# ---------------------------------------------------------------- commands
def cmd_embed(args) -> None:
    from blat_core.atomic import atomic_path
    from blat_core.models.checkpoints import file_digest

    device = _device(args.device)
    model, _ = _load_blat(args.model, device)
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


def read_index(path: str | Path) -> tuple[list[str], np.ndarray, dict]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"index {path} not found: make one with `blat embed AUDIO_DIR --model M --out {path}`")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise UsageError(f"{path} is not a Parquet index written by `blat embed` ({error})") from error
    meta = json.loads((table.schema.metadata or {}).get(b"blat", b"null"))
    if meta is None or "embedding" not in table.column_names:
        raise UsageError(f"{path} is not an index written by `blat embed` (no embedding column / blat metadata)")
    embeddings = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(table.num_rows, -1)
    return table.column("path").to_pylist(), embeddings, meta


def check_index_model(index: str | Path, meta: dict, embeddings: np.ndarray, model_folder: str | Path,
                      text: np.ndarray) -> None:  # fmt: skip
    """Refuse to score an index with a model other than the one that embedded it: the two embedding spaces
    are unrelated, so the scores would mean nothing (a different width would crash in matmul)."""
    from blat_core.models.checkpoints import file_digest

    if text.shape[1] != embeddings.shape[1]:
        raise UsageError(f"{index} holds {embeddings.shape[1]}-d embeddings; {model_folder} makes {text.shape[1]}-d: "
                         f"embed the audio with this model (`blat embed ... --model {model_folder}`)")  # fmt: skip
    digest = file_digest(Path(model_folder) / "blat.safetensors")
    if meta.get("model_digest") and meta["model_digest"] != digest:
        raise UsageError(
            f"{index} was embedded by another model ({meta.get('model')}, weights {meta['model_digest'][:12]}) than "
            f"{model_folder} (weights {digest[:12]}): use that model, or re-embed with `blat embed ... --model "
            f"{model_folder}`"
        )


def cmd_search(args) -> None:
    paths, embeddings, meta = read_index(args.index)
    device = _device(args.device)
    model_folder = args.model or meta["model"]
    model, tokenizer = _load_blat(model_folder, device)
    queries = _texts(model, tokenizer, args.query, device)
    check_index_model(args.index, meta, embeddings, model_folder, queries)
    for query, vector in zip(args.query, queries, strict=True):
        scores = embeddings @ vector
        print(f'"{query}"')
        for rank, i in enumerate(np.argsort(-scores, kind="stable")[: args.k], start=1):
            print(f"  {rank:>3}  {scores[i]:.3f}  {paths[i]}")


def read_labels(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels file {path} not found (one class name per line)")
    labels = [line.strip() for line in path.read_text().splitlines()]
    labels = [line for line in labels if line and not line.startswith("#")]
    if len(labels) < 2:
        raise UsageError(f"{path} holds {len(labels)} label(s): zero-shot classification needs at least 2")
    return labels


def cmd_classify(args) -> None:
    from blat_core.eval.classification import label_text

    labels = read_labels(args.labels)
    device = _device(args.device)
    model, tokenizer = _load_blat(args.model, device)
    source = Path(args.audio)
    text = _texts(model, tokenizer, [label_text(label, args.prompt) for label in labels], device)
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
    _write_csv(args.out, ["path", "label", "score"], rows)
    print(f"classified {len(rows)} files into {len(labels)} labels -> {args.out or 'stdout'}; {skipped}")


def cmd_caption(args) -> None:
    from blat_core.data.synthesis import caption_frames
    from blat_core.models.audio.encoder import load_audio_encoder
    from blat_core.models.captioner.io import load_captioner
    from blat_core.models.checkpoints import CheckpointError

    device = _device(args.device)
    for folder, kind in ((args.captioner, "captioner.json"), (args.tagger, "tagger.json")):
        if not (Path(folder) / kind).is_file():
            raise UsageError(f"{folder} has no {kind}: give the model folder a `captioner@…` / `tagger` stage wrote")
    try:
        captioner = load_captioner(args.captioner, device)
        tower, tower_meta = load_audio_encoder(args.tagger)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    tower.to(device)
    uses_tags = captioner.model.tags is not None
    mids = _tag_mids(args.tags, captioner.classes) if args.tags else None
    folder = AudioFolder.scan(args.audio_dir)
    names = dict(captioner.classes)
    rows = []
    for paths, waves in folder.chunks(tower.sample_rate, desc="captioning"):
        for start in range(0, len(paths), args.batch_size):
            batch = slice(start, start + args.batch_size)
            frames, tag_lists = _frames_and_tags(tower, tower_meta, waves[batch], uses_tags, mids, args.threshold,
                                                 device)  # fmt: skip
            captions, _ = caption_frames(captioner, frames, tag_lists, args.beam, args.max_tokens, device)
            rows += [[p, c, "; ".join(names.get(m, m) for m in t)]
                     for p, c, t in zip(paths[batch], captions, tag_lists, strict=True)]  # fmt: skip
    _write_csv(args.out, ["path", "caption", "tags"], rows)
    print(f"captioned {len(rows)} files -> {args.out or 'stdout'}; {folder.summary()}")


def _tag_mids(text: str, classes: list[tuple[str, str]]) -> list[str]:
    by_name = {name.lower(): mid for mid, name in classes} | {mid.lower(): mid for mid, _ in classes}
    mids = []
    for tag in (t.strip() for t in text.split(";") if t.strip()):
        if tag.lower() not in by_name:
            raise UsageError(f"unknown tag {tag!r}: use the captioner's AudioSet names or mids, separated by ';'")
        mids.append(by_name[tag.lower()])
    return mids


@torch.no_grad()
def _frames_and_tags(tower, meta, waves, uses_tags, mids, threshold, device):
    from blat_core import compute
    from blat_core.data import batching

    wave, lengths, _ = batching.pad_collate([(torch.from_numpy(w), k) for k, w in enumerate(waves)])
    wave, lengths = batching.to_device_float(wave, device), lengths.to(device)
    frame_lengths = tower.frame_lengths(lengths)
    with compute.autocast(device):
        frames = tower.forward_frames(wave, lengths)
        # The tag logits from the same frames (eval mode: forward() = head(pool(frames)), no second pass).
        logits = tower.head(tower.pool(frames, frame_lengths)) if uses_tags and mids is None else None
    frames = frames.to(torch.float16).float().cpu().numpy()
    counts = frame_lengths.tolist()
    arrays = [frames[row, : counts[row]] for row in range(len(waves))]
    if not uses_tags:
        return arrays, [[] for _ in waves]
    if mids is not None:
        return arrays, [list(mids) for _ in waves]
    classes = [mid for mid, _ in meta["classes"]]
    probabilities = torch.sigmoid(logits.float()).cpu().numpy()
    tags = [[classes[j] for j in np.flatnonzero(p >= threshold)] or [classes[int(p.argmax())]] for p in probabilities]
    return arrays, tags


def cmd_import_blat(args) -> None:
    from blat_core.models.checkpoints import CheckpointError
    from blat_core.models.official import import_official_blat

    try:
        dropped = import_official_blat(args.checkpoint, args.text_folder, args.out, args.sample_rate, args.max_tokens,
                                       args.logit_scale_max)  # fmt: skip
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    print(f"imported {args.checkpoint} -> {args.out} (dropped {len(dropped)} keys: {', '.join(dropped)})")


def cmd_doctor(args) -> int:
    from blat_core.app.doctor import run_checks

    failures = run_checks(Path(args.params), Path(args.project))
    # A broken torch/torchaudio pair stops every stage: exit 1 for it even without --strict.
    return 1 if failures and (args.strict or "torchaudio" in failures) else 0


def _write_csv(out: str | None, header: list[str], rows: list[list]) -> None:
    from blat_core.atomic import atomic_path

    if out is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    with atomic_path(out) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped file and model load")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def audio_options(sub, batch=16):
        sub.add_argument("--batch-size", type=int, default=batch, help=f"windows per batch (default {batch})")
        sub.add_argument(
            "--window-seconds",
            type=float,
            default=10.0,
            help="clips longer than this are embedded as the mean over fixed windows (default 10)",
        )
        sub.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when present)")

    sub = add("embed", cmd_embed, "embed every audio file under a folder into a Parquet index (deterministic)")
    sub.add_argument("audio_dir", help="folder of audio files (searched recursively; any sample rate, mixed to mono)")
    sub.add_argument("--model", required=True, help="exported BLAT model folder (e.g. data/models/blat_stage2)")
    sub.add_argument("--out", required=True, help="the index to write (.parquet)")
    audio_options(sub)

    sub = add("search", cmd_search, "text-to-audio search over an index made by `blat embed`")
    sub.add_argument("query", nargs="+", help="one or more text queries")
    sub.add_argument("--index", required=True, help="index written by `blat embed`")
    sub.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    sub.add_argument("--model", help="model folder (default: the one that made the index)")
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")

    sub = add("classify", cmd_classify, "zero-shot classification of audio files into the labels of a text file")
    sub.add_argument("audio", help="folder of audio files, or an index written by `blat embed` with the same model")
    sub.add_argument("--labels", required=True, help="text file, one class name per line ('_' reads as a space)")
    sub.add_argument("--model", required=True, help="exported BLAT model folder")
    sub.add_argument("--prompt", default="{}", help="template around each label, e.g. 'the sound of {}'")
    sub.add_argument("--out", help="CSV to write (default: standard output)")
    audio_options(sub)

    sub = add("caption", cmd_caption, "caption audio files with a trained captioner (tag-guided or not)")
    sub.add_argument("audio_dir", help="folder of audio files")
    sub.add_argument("--captioner", required=True, help="captioner folder (e.g. data/models/captioner_tags)")
    sub.add_argument("--tagger", required=True, help="the tagger folder whose frame features the captioner was "
                     "trained on (data/models/tagger); it also predicts the tags when --tags is not given")  # fmt: skip
    sub.add_argument("--tags", help="AudioSet tags for every file, names or mids separated by ';' (default: predicted)")
    sub.add_argument("--threshold", type=float, default=0.3, help="tag probability threshold (default 0.3; at least "
                     "the top tag is always used)")  # fmt: skip
    sub.add_argument("--beam", type=int, default=3)
    sub.add_argument("--max-tokens", type=int, default=20)
    sub.add_argument("--batch-size", type=int, default=16)
    sub.add_argument("--out", help="CSV to write (default: standard output)")
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")

    sub = add("import-blat", cmd_import_blat, "convert the authors' BLAT checkpoint (blat_cnn14_bertm.pth) into a "
              "model folder")  # fmt: skip
    sub.add_argument("checkpoint", help="the .pth file (weights under 'state_dict')")
    sub.add_argument("--text-folder", required=True, help="local BERT-medium folder (config.json + tokenizer files)")
    sub.add_argument("--out", required=True, help="model folder to write (e.g. data/models/blat_official)")
    sub.add_argument("--sample-rate", type=int, help="only for a file without front-end buffers (they imply it)")
    sub.add_argument("--max-tokens", type=int, default=30)
    sub.add_argument("--logit-scale-max", type=float, default=None, help="cap for the logit scale (default: none, "
                     "as the reference)")  # fmt: skip

    sub = add("doctor", cmd_doctor, "check this machine and project: Java, dataset roots, checkpoints, text "
              "encoder, GPU, disk, and what each stage needs")  # fmt: skip
    sub.add_argument("--params", default="params.yaml", help="params file to check (default params.yaml)")
    sub.add_argument("--project", default=".", help="project root (default: the current folder)")
    sub.add_argument("--strict", action="store_true",
                     help="exit 1 when any check fails (a torchaudio that does not load always exits 1)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return args.handler(args) or 0
    except (UsageError, ParamsError) as error:
        print(f"blat {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
