"""Read a prepared dataset: its manifest, and any clip's waveform by id with random access.

File handles are opened lazily and per process, so a `PreparedDataset` can be handed to a
multi-worker DataLoader: each worker opens its own handles after the fork.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import torch

from blat_core.data.shards import ShardFiles, shard_name


def read_user_info(folder: str | Path) -> dict | None:
    """A dataset of your own's recipe and scoring as prepare wrote them (dataset.json: generic recipes); None for a
    known dataset."""
    path = Path(folder) / "dataset.json"
    return json.loads(path.read_text()) if path.is_file() else None


class PreparedDataset:
    """A `data/prepared/<dataset>` folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        manifest = self.folder / "manifest.parquet"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: run `dvc repro prepare@<dataset>` first")
        table = pq.read_table(manifest)
        meta = table.schema.metadata or {}
        self.name = meta.get(b"blat.dataset", b"").decode()
        self.sample_rate = int(meta.get(b"blat.sample_rate", b"0"))
        self.columns = table.to_pydict()
        self._index = {audio_id: i for i, audio_id in enumerate(self.columns["audio_id"])}
        self._files = ShardFiles(self.folder)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, audio_id: str) -> bool:
        return audio_id in self._index

    @property
    def ids(self) -> list[str]:
        return self.columns["audio_id"]

    def row(self, audio_id: str) -> dict:
        """The manifest row of one clip as a dict."""
        i = self._position(audio_id)
        return {key: values[i] for key, values in self.columns.items()}

    def rows(self, split: str | None = None) -> Iterator[dict]:
        """Every manifest row (optionally of one split), training-safe or not: for summaries and scoring.
        Training code reads `training_rows`; evaluation code reads `evaluation_rows`."""
        for i in range(len(self)):
            if split is None or self.columns["split"][i] == split:
                yield {key: values[i] for key, values in self.columns.items()}

    def training_rows(self, split: str | None = None) -> Iterator[dict]:
        """The leakage gate: the rows a model may be trained on (optionally of one split). A clip of any
        evaluation split, of this dataset or another one it overlaps (`eval_overlap`, set by `prepare`), is
        never among them. Every training reader goes through here (tests/test_leakage.py)."""
        for row in self.rows(split):
            if row["trainable"]:
                yield row

    def training_ids(self) -> set[str]:
        """The ids `training_rows` yields."""
        return {row["audio_id"] for row in self.training_rows()}

    def evaluation_rows(self, split: str) -> list[dict]:
        """The rows of a split held out for evaluation or validation (to score or to select a model on, never to
        train): a split the leakage gate holds out entirely; a split with any trainable clip is refused."""
        rows = list(self.rows(split))
        if any(row["trainable"] for row in rows):
            raise ValueError(f"{self.folder}: split {split!r} holds training clips, so it is not an evaluation split "
                             "of this dataset; training reads training_rows")  # fmt: skip
        return rows

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
        i = self._position(audio_id)
        offset, length = self.columns["offset"][i], self.columns["num_samples"][i]
        return self._shard(self.columns["shard"][i])["waveform"][offset : offset + length]

    def _position(self, audio_id: str) -> int:
        try:
            return self._index[audio_id]
        except KeyError:
            raise KeyError(f"{audio_id!r} is not in {self.folder}/manifest.parquet") from None

    def _shard(self, index: int) -> h5py.File:
        return self._files.get(shard_name(index))

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
