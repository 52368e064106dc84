"""Contiguous HDF5 shards: per shard one flat array (clips concatenated along axis 0) plus an offset table.

No HDF5 chunking: a clip is one plain slice, the fastest random read (SPEC §9). Waveforms are int16
`waves_NNNNN.h5`; frame features are float16 `frames_rR_NNNNN.h5`.
"""

from __future__ import annotations

import os
import resource
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


def descriptor_budget() -> int:
    """Open shard files per ShardFiles (per process): 64 under the usual soft limit of 1,024 descriptors, a
    sixteenth of a lower one (a stage holds a few sets; every DataLoader worker is its own process)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 64 if soft == resource.RLIM_INFINITY else max(4, min(64, soft // 16))


class ShardFiles:
    """Read-only access to a shard folder, opened lazily and never shared across processes: after a fork (a
    DataLoader worker) or a pickle, each process opens its own. A contiguous dataset (how ShardWriter writes them)
    is read with one `pread` at the byte offset HDF5 gives for it, found once per shard: a plain descriptor opens in
    microseconds where an HDF5 handle takes a few hundred, so random reads across AudioSet's ≈1,240 shards cost the
    same per clip as across 6. At most `max_open` descriptors (and as many HDF5 handles, for chunked or compressed
    files we did not write) stay open, least recently used closed first: `descriptor_budget()`, far below the
    process's soft limit."""

    def __init__(self, folder: Path, max_open: int | None = None):
        self.folder = Path(folder)
        self.max_open = descriptor_budget() if max_open is None else max(1, max_open)
        self._prefix = f"{self.folder}{os.sep}"  # a plain string path opens faster than a Path
        self._pid = -1
        self._reset()

    def _reset(self) -> None:
        if self._pid not in (-1, os.getpid()):  # a forked child: its copies of the parent's plain descriptors
            for fd in self._fds.values():
                os.close(fd)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._handles: OrderedDict[str, h5py.File] = OrderedDict()
        self._layouts: dict[tuple[str, str], tuple | None] = {}  # (file, dataset) -> where its rows lie, or None
        self._pid = os.getpid()

    def read(self, name: str, dataset: str, start: int, count: int) -> np.ndarray:
        """Rows [start, start + count) of `dataset` in shard file `name` (fewer where the dataset ends)."""
        if self._pid != os.getpid():
            self._reset()
        key = (name, dataset)
        if key not in self._layouts:
            self._layouts[key] = self._layout(name, dataset)
        layout = self._layouts[key]
        if layout is None:
            return self.get(name)[dataset][start : start + count]
        base, dtype, row_shape, rows = layout
        count = max(0, min(start + count, rows) - start)
        row_bytes = dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
        buffer = bytearray(count * row_bytes)
        if count and os.preadv(self._fd(name), [buffer], base + start * row_bytes) != len(buffer):
            raise OSError(f"{self.folder / name} is shorter than its {dataset!r} dataset: the shard is truncated; "
                          "re-run the stage that wrote it")  # fmt: skip
        return np.frombuffer(buffer, dtype=dtype).reshape(count, *row_shape)

    def _layout(self, name: str, dataset: str) -> tuple | None:
        """(byte offset, dtype, row shape, rows) of a contiguous, unfiltered dataset; None for any other."""
        with h5py.File(self.folder / name, "r") as handle:
            data = handle[dataset]
            offset = data.id.get_offset()
            if data.chunks is not None or offset is None or data.ndim == 0:
                return None
            return offset, data.dtype, data.shape[1:], data.shape[0]

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is not None:
            self._fds.move_to_end(name)
            return fd
        while len(self._fds) >= self.max_open:
            os.close(self._fds.popitem(last=False)[1])
        fd = self._fds[name] = os.open(self._prefix + name, os.O_RDONLY)
        return fd

    def get(self, name: str) -> h5py.File:
        """An open HDF5 handle of shard `name` (for datasets `read` cannot pread)."""
        if self._pid != os.getpid():
            self._reset()
        handle = self._handles.get(name)
        if handle is not None:
            self._handles.move_to_end(name)
            return handle
        while len(self._handles) >= self.max_open:
            self._handles.popitem(last=False)[1].close()
        handle = self._handles[name] = h5py.File(self.folder / name, "r")
        return handle

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        for handle in self._handles.values():
            handle.close()
        self._pid = -1
        self._reset()

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.folder, self.max_open, self._pid = state["folder"], state["max_open"], -1
        self._prefix = f"{self.folder}{os.sep}"
        self._reset()
