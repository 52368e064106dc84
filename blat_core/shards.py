"""Contiguous int16 waveform shards in HDF5: one flat array per shard plus an offset table.

No HDF5 chunking: a clip is one plain slice, the fastest random read (SPEC §9).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def shard_name(index: int) -> str:
    return f"waves_{index:05d}.h5"


class ShardWriter:
    """Append int16 clips; a shard is written when adding a clip would pass `max_bytes`."""

    def __init__(self, folder: Path, max_bytes: int, sample_rate: int):
        self.folder, self.max_bytes, self.sample_rate = folder, max_bytes, sample_rate
        self.index, self._clips, self._ids, self._bytes = 0, [], [], 0

    def add(self, audio_id: str, samples: np.ndarray) -> tuple[int, int]:
        """Queue one clip; returns (shard index, sample offset inside the shard)."""
        if self._clips and self._bytes + samples.nbytes > self.max_bytes:
            self.flush()
        offset = sum(len(c) for c in self._clips)
        self._clips.append(samples.astype(np.int16, copy=False))
        self._ids.append(audio_id)
        self._bytes += samples.nbytes
        return self.index, offset

    def flush(self) -> None:
        if not self._clips:
            return
        lengths = np.array([len(c) for c in self._clips], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        with h5py.File(self.folder / shard_name(self.index), "w", track_order=False) as handle:
            handle.create_dataset("waveform", data=np.concatenate(self._clips), track_times=False)
            handle.create_dataset("offsets", data=offsets, track_times=False)
            handle.create_dataset("lengths", data=lengths, track_times=False)
            handle.create_dataset("audio_id", data=np.array(self._ids, dtype=h5py.string_dtype()), track_times=False)
            handle.attrs["sample_rate"] = self.sample_rate
        self.index += 1
        self._clips, self._ids, self._bytes = [], [], 0

    @property
    def shards_written(self) -> int:
        return self.index
