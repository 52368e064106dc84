"""Reading the frame embeddings the bootstrapping step wrote (`blat_core/bootstrap/features.py`): by clip id,
from float16 shards.

Folder layout: `frames_rR_NNNNN.h5` (rank R's shards: one flat (frames, dim) float16 array each, plus
offsets/lengths) and `index.parquet` (audio_id, file, offset, num_frames) merged over ranks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from blat_core.data.shards import ShardFiles


class FrameFeatures:
    """Read frame embeddings by clip id: (num_frames, dim) float16; handles opened lazily per process."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        index = self.folder / "index.parquet"
        if not index.is_file():
            raise FileNotFoundError(f"{index} not found: run `dvc repro features@<dataset>` first")
        columns = pq.read_table(index).to_pydict()
        self._where = {
            a: (f, o, n)
            for a, f, o, n in zip(
                columns["audio_id"], columns["file"], columns["offset"], columns["num_frames"], strict=True
            )
        }
        self._files = ShardFiles(self.folder)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, audio_id: str) -> bool:
        return audio_id in self._where

    @property
    def ids(self) -> list[str]:
        return list(self._where)

    def frames(self, audio_id: str) -> np.ndarray:
        file, offset, count = self._where[audio_id]
        return self._files.get(file)["frames"][offset : offset + count]
