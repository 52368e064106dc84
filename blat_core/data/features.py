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
    """Read frame embeddings by clip id: (num_frames, dim) float16; handles opened lazily per process. The index
    stays in arrays (≈0.2 KB a clip with the id lookup; AudioSet's 2M in ≈0.4 GB)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        index = self.folder / "index.parquet"
        if not index.is_file():
            raise FileNotFoundError(f"{index} not found: run `dvc repro features@<dataset>` first")
        table = pq.read_table(index, columns=["audio_id", "file", "offset", "num_frames"])
        files = table.column("file").combine_chunks().dictionary_encode()
        self._names = files.dictionary.to_pylist()
        self._file = files.indices.to_numpy(zero_copy_only=False)
        self._offset = table.column("offset").to_numpy()
        self._count = table.column("num_frames").to_numpy()
        self._ids = table.column("audio_id").to_pylist()
        self._row = {audio_id: i for i, audio_id in enumerate(self._ids)}
        self._files = ShardFiles(self.folder)

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, audio_id: str) -> bool:
        return audio_id in self._row

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def num_frames(self, audio_id: str) -> int:
        return int(self._count[self._row[audio_id]])

    def frames(self, audio_id: str) -> np.ndarray:
        i = self._row[audio_id]
        return self._files.read(self._names[self._file[i]], "frames", int(self._offset[i]), int(self._count[i]))
