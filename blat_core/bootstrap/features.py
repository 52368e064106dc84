"""The bootstrapping step's first part: frame embeddings of every clip a captioner needs, from the tagger's
audio tower, as float16 shards (read back by `blat_core/data/features.py`).

Folder layout: `frames_rR_NNNNN.h5` (rank R's shards: one flat (frames, dim) float16 array each, plus
offsets/lengths) and `index.parquet` (audio_id, file, offset, num_frames) merged over ranks.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from blat_core import compute
from blat_core.data import batching
from blat_core.data.prepared import PreparedDataset
from blat_core.data.shards import ShardWriter, shard_name
from blat_core.distributed import Ranks
from blat_core.params import bounded

log = logging.getLogger(__name__)


@dataclass
class FeaturesParams:
    """The `features` section of params.yaml."""

    datasets: list[str]
    batch_size: int = bounded(ge=1)
    shard_size_mb: int = bounded(ge=1)


@torch.no_grad()
def extract(
    model, prepared: PreparedDataset, out: Path, params: FeaturesParams, device, ranks: Ranks, workers: int = 0
) -> dict:
    """Write `out` (this rank's share of the clips; rank 0 also merges the index). Returns a summary."""
    partial = out.parent / f".{out.name}.partial"
    if ranks.rank == 0:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    ranks.barrier()
    # Longest clips first (less padding per batch); rank r takes every world-th clip.
    order = sorted(zip((-prepared.lengths()).tolist(), prepared.ids, strict=True))
    ids = [audio_id for _, audio_id in order][ranks.rank :: ranks.world]
    prefix = f"frames_r{ranks.rank}"
    writer = ShardWriter(partial, params.shard_size_mb * 2**20, {"dataset": prepared.name}, prefix, "frames")
    records, started = [], time.perf_counter()
    desc = f"features {prepared.name}" if ranks.rank == 0 else None
    for index, frames in clip_frames(model, prepared, ids, params.batch_size, device, workers, desc):
        shard, offset = writer.add(ids[index], frames)
        records.append((ids[index], shard_name(shard, prefix), offset, len(frames)))
    writer.flush()
    elapsed = time.perf_counter() - started
    log.info("rank %d: %d clips in %.1f s (%.1f clips/s)", ranks.rank, len(ids), elapsed, len(ids) / max(elapsed, 1e-9))
    _write_index(partial / f"index_r{ranks.rank}.parquet", records)
    ranks.barrier()
    if ranks.rank == 0:
        parts = sorted(partial.glob("index_r*.parquet"))
        table = pa.concat_tables([pq.read_table(p) for p in parts]).sort_by("audio_id")
        pq.write_table(table, partial / "index.parquet")
        for part in parts:
            part.unlink()
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
    ranks.barrier()
    return {"clips": len(ids), "seconds": elapsed, "dim": int(model.embedding_dim)}


@torch.no_grad()
def clip_frames(
    model, prepared: PreparedDataset, ids: list[str], batch_size: int, device, workers: int = 0, desc: str | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(item index into `ids`, (frames, dim) float16 frame embeddings) of every clip, whole, in batches."""
    batching.check_sample_rate(getattr(model, "sample_rate", None), prepared, "the audio tower")
    for wave, lengths, indices in batching.full_clips(prepared, ids, batch_size, device, workers, desc):
        with compute.autocast(device):
            frames = model.forward_frames(wave, lengths)
        counts = model.frame_lengths(lengths).tolist()
        frames = frames.to(torch.float16).cpu().numpy()  # (B, T', D)
        for row, index in enumerate(indices.tolist()):
            yield index, frames[row, : counts[row]]


def _write_index(path: Path, records: list[tuple]) -> None:
    ids, files, offsets, counts = zip(*records, strict=True) if records else ([], [], [], [])
    table = pa.table(
        {
            "audio_id": pa.array(ids, pa.string()),
            "file": pa.array(files, pa.string()),
            "offset": pa.array(offsets, pa.int64()),
            "num_frames": pa.array(counts, pa.int32()),
        }
    )
    pq.write_table(table, path)
