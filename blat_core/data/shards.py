"""Contiguous HDF5 shards: per shard one flat array (clips concatenated along axis 0) plus an offset table.

No HDF5 chunking: a clip is one plain slice, the fastest random read (SPEC §9). Waveforms are int16
`waves_NNNNN.h5`; frame features are float16 `frames_rR_NNNNN.h5`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np


def shard_name(index: int, prefix: str = "waves") -> str:
    return f"{prefix}_{index:05d}.h5"


class ShardWriter:
    """Append arrays (n_i, ...) of one dtype; a shard is written when adding one would pass `max_bytes`."""

    def __init__(self, folder: Path, max_bytes: int, attrs: dict, prefix: str = "waves", dataset: str = "waveform"):
        self.folder, self.max_bytes, self.attrs = folder, max_bytes, attrs
        self.prefix, self.dataset = prefix, dataset
        self.index, self._items, self._ids, self._bytes, self._rows = 0, [], [], 0, 0

    def would_flush(self, array: np.ndarray) -> bool:
        """Whether adding `array` first writes the shard queued so far."""
        return bool(self._items) and self._bytes + array.nbytes > self.max_bytes

    def add(self, item_id: str, array: np.ndarray) -> tuple[int, int]:
        """Queue one clip's array; returns (shard index, offset along axis 0 inside the shard). O(1) per clip."""
        if self.would_flush(array):
            self.flush()
        offset = self._rows
        self._items.append(array)
        self._ids.append(item_id)
        self._bytes += array.nbytes
        self._rows += len(array)
        return self.index, offset

    def flush(self) -> None:
        if not self._items:
            return
        lengths = np.array([len(a) for a in self._items], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        with h5py.File(self.folder / shard_name(self.index, self.prefix), "w") as handle:
            handle.create_dataset(self.dataset, data=np.concatenate(self._items), track_times=False)
            handle.create_dataset("offsets", data=offsets, track_times=False)
            handle.create_dataset("lengths", data=lengths, track_times=False)
            handle.create_dataset("audio_id", data=np.array(self._ids, dtype=h5py.string_dtype()), track_times=False)
            for key, value in self.attrs.items():
                handle.attrs[key] = value
        self.index += 1
        self._items, self._ids, self._bytes, self._rows = [], [], 0, 0

    @property
    def shards_written(self) -> int:
        return self.index


MAX_OPEN = 16  # open shard handles per ShardFiles (per process); a stage holds a few sets, a rank a few workers


class ShardFiles:
    """Read-only HDF5 handles of a shard folder, opened lazily and never shared across processes:
    after a fork (a DataLoader worker) or a pickle, each process opens its own. At most `max_open` stay
    open (least recently used closed first), so reading across AudioSet's ≈1,240 shards holds a bounded
    number of descriptors, far below the usual soft limit of 1,024."""

    def __init__(self, folder: Path, max_open: int = MAX_OPEN):
        self.folder, self.max_open = Path(folder), max(1, max_open)
        self._handles: OrderedDict[str, h5py.File] = OrderedDict()
        self._pid = os.getpid()

    def get(self, name: str) -> h5py.File:
        if self._pid != os.getpid():
            self._handles, self._pid = OrderedDict(), os.getpid()  # the parent's handles are not ours to close
        handle = self._handles.get(name)
        if handle is not None:
            self._handles.move_to_end(name)
            return handle
        while len(self._handles) >= self.max_open:
            self._handles.popitem(last=False)[1].close()
        handle = self._handles[name] = h5py.File(self.folder / name, "r")
        return handle

    @property
    def open_count(self) -> int:
        return len(self._handles)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = OrderedDict()

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "max_open": self.max_open, "_handles": OrderedDict(), "_pid": -1}
