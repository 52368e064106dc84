"""What the `blat` commands share: usage errors, audio folders read a chunk at a time, model loading,
text embedding, the index files `blat embed` writes, and CSV output."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from blat_core.atomic import atomic_path, csv_text

log = logging.getLogger("blat")


class UsageError(Exception):
    """A bad path, file or option: printed as one line, exit status 2."""


@dataclass
class AudioFolder:
    """The audio files of a folder (recursive, sorted), resampled to one rate; unreadable files are skipped
    and counted by reason. `embed_folder` and `blat caption` stream each file window by window, so even a file
    of hours fits in memory."""

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

    def skip(self, path: Path, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        log.warning("skipped %s: %s (%s)", path, reason, detail)

    def progress(self, desc: str):
        """The files, with a progress bar."""
        return tqdm(self.files, desc=desc, mininterval=2.0, disable=len(self.files) < 50)

    def require_some(self, read: int) -> None:
        if read == 0:
            raise UsageError(f"none of the {len(self.files)} audio files under {self.root} could be read: "
                             f"{dict(self.skipped)}")  # fmt: skip

    def summary(self) -> str:
        total = sum(self.skipped.values())
        return f"skipped {total}{f' {dict(self.skipped)}' if total else ''}"


def embed_folder(model, folder: AudioFolder, window_seconds: float, batch_size: int, device, mean: bool = False):
    """(paths, seconds, windows per file, (files, E) embeddings) of a folder. Each file is decoded and
    embedded window by window (`embed_file`): memory stays at a few windows per batch whatever the files'
    lengths; a file that fails half-way is skipped and its windows forgotten."""
    from blat_core.data.audio import AudioError
    from blat_core.models.inference import WindowEmbedder, embed_file

    rate = model.audio_encoder.sample_rate
    embedder = WindowEmbedder(model, batch_size, device, mean)
    paths, seconds, counts = [], [], []
    for path in folder.progress("embedding"):
        try:
            samples, count = embed_file(embedder, len(paths), path, rate, int(window_seconds * rate))
        except AudioError as error:
            folder.skip(path, error.reason, error.detail)
            continue
        paths.append(str(path.relative_to(folder.root)))
        seconds.append(samples / rate)
        counts.append(count)
    folder.require_some(len(paths))
    return paths, seconds, counts, embedder.finish(len(paths))


def device_of(name: str | None) -> torch.device:
    """The device `--device` names (default: CUDA when present); an unknown or absent one is a UsageError."""
    from blat_core.compute import pick_device

    if not name:
        return pick_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device: use cpu, cuda, cuda:1, …") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); use cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name}: only cpu and cuda (and mps on macOS) are supported")
    return device


def _option_type(convert, accepts, wanted: str, kind: str):
    """An argparse `type=` that converts the text and checks the value; its errors are one line."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    return parse


# Option values: a window length or threshold, a batch size or k, a probability.
positive_number = _option_type(float, lambda v: math.isfinite(v) and v > 0, "a number above 0", "a number")
positive_int = _option_type(int, lambda v: v >= 1, "at least 1", "a whole number")
probability = _option_type(float, lambda v: 0.0 <= v <= 1.0, "between 0 and 1", "a number")


def read_text_lines(path: str | Path, what: str) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark is dropped); a missing or non-UTF-8 file is a
    UsageError naming it and where the bad byte is."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} {path} not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(f"{what} {path} is not UTF-8 text (byte {error.start}, line {line}): save it as UTF-8"
                         ) from None  # fmt: skip


def load_blat_folder(folder: str | Path, device):
    """(model, tokenizer) of a BLAT model folder; anything wrong with it is one UsageError naming the folder."""
    from blat_core.models.blat_model import load_blat
    from blat_core.models.checkpoints import CheckpointError

    folder = Path(folder)
    if not (folder / "blat.json").is_file():
        raise UsageError(f"{folder} is not a BLAT model folder (no blat.json): give e.g. data/models/blat_stage2")
    try:
        model, tokenizer, _ = load_blat(folder, device)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    except (KeyError, TypeError, ValueError, OSError, AttributeError) as error:  # a sidecar or text folder
        # that parses but describes no model we can build (wrong types, unknown names, broken tokenizer files)
        said = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise UsageError(f"{folder} is not a usable BLAT model folder ({type(error).__name__}: {said}); export it "
                         "again from its pipeline run") from None  # fmt: skip
    return model, tokenizer


def embed_texts(model, tokenizer, texts: list[str], device) -> np.ndarray:
    from blat_core.models.embed import embed_captions

    return embed_captions(model, tokenizer, texts, 64, device).numpy()


def read_index(path: str | Path) -> tuple[list[str], np.ndarray, dict]:
    """(paths, (rows, E) float32 embeddings, metadata) of an index written by `blat embed`; a file that is
    not one (not Parquet, missing or mistyped columns or metadata, non-finite embeddings) is a UsageError."""
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"index {path} not found: make one with `blat embed AUDIO_DIR --model M --out {path}`")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise UsageError(f"{path} is not a Parquet index written by `blat embed` ({error})") from error

    def bad(why: str) -> UsageError:
        return UsageError(f"{path} is not an index written by `blat embed` ({why}): make it again with `blat embed`")

    try:
        meta = json.loads((table.schema.metadata or {}).get(b"blat", b"null"))
    except ValueError:
        raise bad("its blat metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise bad("no blat metadata" if meta is None else "its blat metadata is not a JSON object")
    for key, kinds in (("model", str), ("model_digest", str), ("audio_root", str), ("window_seconds", (int, float))):
        if key in meta and not isinstance(meta[key], kinds):
            raise bad(f"metadata {key!r} is {type(meta[key]).__name__}")
    if "model" not in meta:
        raise bad("its metadata names no model")
    if "window_seconds" in meta and not (math.isfinite(meta["window_seconds"]) and meta["window_seconds"] > 0):
        raise bad(f"metadata window_seconds is {meta['window_seconds']}")
    if "embedding" not in table.column_names or "path" not in table.column_names:
        raise bad(f"columns {table.column_names}, expected path and embedding")
    kind, paths = table.schema.field("embedding").type, table.column("path")
    if not pa.types.is_fixed_size_list(kind) or not pa.types.is_floating(kind.value_type) or kind.list_size < 1:
        raise bad(f"the embedding column is {kind}, expected fixed_size_list<float>")
    if not pa.types.is_string(paths.type) or paths.null_count:
        raise bad(f"the path column is {paths.type} with {paths.null_count} empty rows, expected strings")
    if table.num_rows == 0:
        raise bad("it has no rows")
    column = table.column("embedding").combine_chunks()
    if column.null_count or column.flatten().null_count:
        raise bad("some embeddings are empty")
    embeddings = np.asarray(column.flatten(), dtype=np.float32).reshape(table.num_rows, -1)
    if not np.isfinite(embeddings).all():
        raise bad(f"row {int(np.flatnonzero(~np.isfinite(embeddings).all(axis=1))[0])} has non-finite values")
    return paths.to_pylist(), embeddings, meta


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


def write_rows(out: str | None, header: list[str], rows: list[list]) -> None:
    """A CSV to `out` (atomically), or to standard output when `out` is None."""
    if out is None:
        sys.stdout.write(csv_text(rows, header))
        return
    with atomic_path(out) as tmp:
        tmp.write_text(csv_text(rows, header))
