"""Contiguous HDF5 shards: per shard one flat array (clips concatenated along axis 0) plus an offset table.

No HDF5 chunking: a clip is one plain slice, the fastest random read (SPEC §9). Waveforms are int16
`waves_NNNNN.h5`; frame features are float16 `frames_rR_NNNNN.h5`.
"""

from __future__ import annotations

import os
import resource
import threading
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


MAX_HANDLES = 16  # HDF5 handles per ShardFiles, for files `read` cannot pread (chunked or compressed)


def descriptor_budget() -> int:
    """Plain shard descriptors a process keeps open: a quarter of its soft limit, at most 4,096 (256 under the
    usual 1,024: AudioSet's ≈1,240 shards stay open from a soft limit of 4,960, `ulimit -n 8192`)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 4096 if soft == resource.RLIM_INFINITY else max(4, min(4096, soft // 4))


class DescriptorPool:
    """Read-only descriptors of shard files, shared by every ShardFiles of a process (so several open sets stay
    within one budget), least recently used closed first. A forked child closes its copies of the parent's."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self._open: OrderedDict[str, int] = OrderedDict()
        self._pid = os.getpid()
        self._lock = threading.Lock()  # a descriptor is not closed by another thread while it is read

    def pread(self, path: str, buffer: bytearray, offset: int) -> int:
        """Read into `buffer` from byte `offset` of file `path`; returns the bytes read."""
        with self._lock:
            return os.preadv(self._descriptor(path), [buffer], offset)

    def _descriptor(self, path: str) -> int:
        if self._pid != os.getpid():
            self._close_all()
            self._pid = os.getpid()
        fd = self._open.get(path)
        if fd is not None:
            self._open.move_to_end(path)
            return fd
        if self.limit is None:
            self.limit = descriptor_budget()
        while len(self._open) >= self.limit:
            os.close(self._open.popitem(last=False)[1])
        fd = self._open[path] = os.open(path, os.O_RDONLY)
        return fd

    def forget(self, prefix: str) -> None:
        """Close the descriptors of the files under folder path `prefix` (ending in a separator)."""
        with self._lock:
            for path in [p for p in self._open if p.startswith(prefix)]:
                os.close(self._open.pop(path))

    def _close_all(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open = OrderedDict()

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held the parent's) and none of its files."""
        self._lock = threading.Lock()
        self._close_all()
        self._pid = os.getpid()

    @property
    def open_count(self) -> int:
        return len(self._open)


DESCRIPTORS = DescriptorPool()
os.register_at_fork(after_in_child=DESCRIPTORS.after_fork)


class ShardFiles:
    """Read-only access to a shard folder, opened lazily and never shared across processes: after a fork (a
    DataLoader worker) or a pickle, each process opens its own. A contiguous dataset (how ShardWriter writes them)
    is read with one `pread` at the byte offset HDF5 gives for it, found once per shard: a plain descriptor opens in
    microseconds where an HDF5 handle takes a few hundred, so random reads across AudioSet's ≈1,240 shards cost the
    same per clip as across 6. The descriptors come from the process's `DESCRIPTORS` pool (`descriptor_budget()`,
    a quarter of the soft limit); at most `max_open` HDF5 handles, for chunked or compressed files we did not write."""

    def __init__(self, folder: Path, max_open: int = MAX_HANDLES):
        self.folder, self.max_open = Path(folder), max(1, max_open)
        self._prefix = f"{self.folder}{os.sep}"  # a plain string path opens faster than a Path
        self._pid = -1
        self._reset()

    def _reset(self) -> None:
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
        if count and DESCRIPTORS.pread(self._prefix + name, buffer, base + start * row_bytes) != len(buffer):
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
        DESCRIPTORS.forget(self._prefix)
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
