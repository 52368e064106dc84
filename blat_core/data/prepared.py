"""Read a prepared dataset: its manifest, and any clip's waveform by id with random access.

File handles are opened lazily and per process, so a `PreparedDataset` can be handed to a
multi-worker DataLoader: each worker opens its own handles after the fork.
"""

from __future__ import annotations

import csv
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from blat_core.data.shards import ShardFiles, shard_name


def read_user_info(folder: str | Path) -> dict | None:
    """A dataset of your own's recipe and scoring as prepare wrote them (dataset.json: generic recipes); None for a
    known dataset."""
    path = Path(folder) / "dataset.json"
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass(eq=False)
class _Manifest:
    """One manifest.parquet as Arrow columns (a few hundred bytes a row), with what is derived from it on first use:
    the id list, the id -> row index and the numeric columns as numpy arrays. Shared by every `PreparedDataset` of
    the same file in a process (`_open`)."""

    table: pa.Table
    name: str
    sample_rate: int
    derived: dict = field(default_factory=dict)

    def ids(self) -> list[str]:
        if "ids" not in self.derived:
            self.derived["ids"] = self.table.column("audio_id").to_pylist()
        return self.derived["ids"]

    def index(self) -> dict[str, int]:
        if "index" not in self.derived:
            self.derived["index"] = {audio_id: i for i, audio_id in enumerate(self.ids())}
        return self.derived["index"]

    def numbers(self, column: str) -> np.ndarray:
        if column not in self.derived:
            self.derived[column] = self.table.column(column).to_numpy()
        return self.derived[column]


_OPEN: OrderedDict[tuple, _Manifest] = OrderedDict()
MAX_MANIFESTS = 8  # a stage reads a few datasets; each stays open once, whoever asks for it


def _open(manifest: Path) -> _Manifest:
    """The manifest, read once per process while the file is unchanged (its path, inode, size and mtime)."""
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: run `dvc repro prepare@<dataset>` first")
    stat = manifest.stat()
    key = (str(manifest.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _OPEN:
        _OPEN.move_to_end(key)
        return _OPEN[key]
    table = pq.read_table(manifest)
    meta = table.schema.metadata or {}
    opened = _OPEN[key] = _Manifest(
        table, meta.get(b"blat.dataset", b"").decode(), int(meta.get(b"blat.sample_rate", b"0"))
    )
    while len(_OPEN) > MAX_MANIFESTS:
        _OPEN.popitem(last=False)
    return opened


class PreparedDataset:
    """A `data/prepared/<dataset>` folder. The manifest stays columnar (Arrow) and is read once per process;
    rows become dicts only as they are iterated, so memory grows with the columns, not with Python objects per row
    (≈2 KB a row before: ≈3 GB for AudioSet's 2.08M)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._manifest = _open(self.folder / "manifest.parquet")
        self.name, self.sample_rate = self._manifest.name, self._manifest.sample_rate
        self._files = ShardFiles(self.folder)

    def __reduce__(self):  # a pickled copy (a spawned worker) re-reads the manifest by path
        return PreparedDataset, (self.folder,)

    def __len__(self) -> int:
        return self._manifest.table.num_rows

    def __contains__(self, audio_id: str) -> bool:
        return audio_id in self._manifest.index()

    @property
    def ids(self) -> list[str]:
        return self._manifest.ids()

    def column(self, name: str) -> list:
        """One manifest column as a list (e.g. `split`), in row order."""
        return self._manifest.table.column(name).to_pylist()

    def lengths(self) -> np.ndarray:
        """Every clip's number of samples, in row order (int64)."""
        return self._manifest.numbers("num_samples")

    def split_codes(self) -> tuple[np.ndarray, list[str]]:
        """Every row's split as an index into a list of split names (no string per row)."""
        encoded = self._manifest.table.column("split").combine_chunks().dictionary_encode()
        return encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()

    def list_column(self, name: str) -> tuple[pa.ChunkedArray, np.ndarray]:
        """A list column (e.g. `tag_mids`) without a Python object per value: every row's values concatenated in row
        order, and how many each row has."""
        column = self._manifest.table.column(name)
        return pc.list_flatten(column), pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)

    def multi_hot(self, column: str, classes: list[str], rows: np.ndarray, dtype=np.float32) -> np.ndarray:
        """(rows kept by mask `rows`, classes) 0/1 targets from a list column of class names (`tag_mids`,
        `tag_names`, `labels`), built from the flat column: no Python object per clip. A value outside `classes`
        is ignored."""
        labels, per_clip = self.list_column(column)
        index = {name: i for i, name in enumerate(classes)}
        distinct = pc.unique(labels)
        lookup = np.array([index.get(label, -1) for label in distinct.to_pylist()] + [-1], dtype=np.int64)
        codes = lookup[pc.index_in(labels, value_set=distinct).fill_null(-1).to_numpy(zero_copy_only=False)]
        owner = np.repeat(np.arange(len(per_clip)), per_clip)  # the row of each label
        wanted = rows[owner] & (codes >= 0)
        targets = np.zeros((int(rows.sum()), len(classes)), dtype=dtype)
        targets[(np.cumsum(rows) - 1)[owner[wanted]], codes[wanted]] = 1
        return targets

    def row(self, audio_id: str) -> dict:
        """The manifest row of one clip as a dict."""
        return self._manifest.table.slice(self.position(audio_id), 1).to_pylist()[0]

    def rows(self, split: str | None = None) -> Iterator[dict]:
        """Every manifest row (optionally of one split), training-safe or not: for summaries and scoring.
        Training code reads `training_rows`; evaluation code reads `evaluation_rows`."""
        return self._iterate(self.split_mask(split))

    def training_mask(self, split: str | None = None) -> np.ndarray:
        """The leakage gate, per row in manifest order: may a model be trained on this clip (optionally: and is it
        of `split`)? A clip of any evaluation split, of this dataset or another one it overlaps (`eval_overlap`, set
        by `prepare`), never. Every training reader goes through here (tests/test_leakage.py)."""
        return self.split_mask(split) & self._manifest.numbers("trainable")

    def training_rows(self, split: str | None = None) -> Iterator[dict]:
        """The rows `training_mask` allows, as dicts."""
        return self._iterate(self.training_mask(split))

    def training_ids(self) -> set[str]:
        """The ids `training_rows` yields."""
        ids = self.ids
        return {ids[i] for i in np.flatnonzero(self.training_mask())}

    def evaluation_rows(self, split: str) -> list[dict]:
        """The rows of a split held out for evaluation or validation (to score or to select a model on, never to
        train): a split the leakage gate holds out entirely; a split with any trainable clip is refused."""
        if self.training_mask(split).any():
            raise ValueError(f"{self.folder}: split {split!r} holds training clips, so it is not an evaluation split "
                             "of this dataset; training reads training_rows")  # fmt: skip
        return list(self.rows(split))

    def split_counts(self) -> dict[str, dict]:
        """{split: {"listed", "prepared", "skipped": {reason: n}}} as the prepare stage counted them
        (splits.json); {} for a folder prepared before it was written."""
        path = self.folder / "splits.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def user_info(self) -> dict | None:
        return read_user_info(self.folder)

    def waveform(self, audio_id: str) -> np.ndarray:
        """The clip's int16 mono samples at `self.sample_rate` (one contiguous slice read)."""
        i = self.position(audio_id)
        offset, length = int(self._manifest.numbers("offset")[i]), int(self._manifest.numbers("num_samples")[i])
        return self._files.read(shard_name(int(self._manifest.numbers("shard")[i])), "waveform", offset, length)

    def split_mask(self, split: str | None) -> np.ndarray:
        """Per row: is it of `split` (every row for None)?"""
        if split is None:
            return np.ones(len(self), dtype=bool)
        return pc.equal(self._manifest.table.column("split"), split).to_numpy(zero_copy_only=False)

    def _iterate(self, mask: np.ndarray, batch_rows: int = 4096) -> Iterator[dict]:
        start = 0  # batch by batch: a few thousand rows are Python objects at any time
        for batch in self._manifest.table.to_batches(max_chunksize=batch_rows):
            keep = mask[start : start + batch.num_rows]
            start += batch.num_rows
            if keep.any():
                yield from batch.filter(pa.array(keep)).to_pylist()

    def position(self, audio_id: str) -> int:
        """The clip's row in the manifest."""
        try:
            return self._manifest.index()[audio_id]
        except KeyError:
            raise KeyError(f"{audio_id!r} is not in {self.folder}/manifest.parquet") from None

    def close(self) -> None:
        self._files.close()


class WaveformDataset(torch.utils.data.Dataset):
    """(int16 waveform tensor, audio_id) for a list of clip ids of a prepared dataset."""

    def __init__(self, prepared: PreparedDataset, ids: list[str] | None = None):
        self.prepared = prepared
        self.ids = list(prepared.ids if ids is None else ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        audio_id = self.ids[index]
        return torch.from_numpy(self.prepared.waveform(audio_id)), audio_id


def read_classes(prepared_audioset: Path) -> list[tuple[str, str]]:
    """The AudioSet ontology (mid, display name) in class-index order, as prepare@audioset saved it."""
    path = Path(prepared_audioset) / "classes.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: re-run `dvc repro prepare@audioset`")
    with path.open(newline="") as handle:
        return [(row["mid"], row["display_name"]) for row in csv.DictReader(handle)]


def multi_hot(tag_lists: list[list[str]], classes: list[tuple[str, str]]) -> np.ndarray:
    """(clips, classes) float32 targets from each clip's tag mids."""
    column = {mid: i for i, (mid, _) in enumerate(classes)}
    targets = np.zeros((len(tag_lists), len(classes)), dtype=np.float32)
    for row, mids in enumerate(tag_lists):
        targets[row, [column[m] for m in mids if m in column]] = 1.0
    return targets
