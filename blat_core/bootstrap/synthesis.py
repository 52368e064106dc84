"""Synthetic captions for AudioSet (SPEC §1 step 2, §2 "Synthesis filter"): choose the clips, then
caption them with the tag-guided captioner in resumable chunks, sharded across processes.

Clip choice, in this order (the first reason that applies is the one counted):
  evaluation_split       the clip is in AudioSet eval;
  evaluation_overlap     the clip is also in another dataset's evaluation split (AudioCaps val/test,
                         VGGSound test, ...; the leakage guard of `prepare` flagged it);
  tags_not_in_audiocaps  one of its labels never occurs among the labels of the AudioCaps clips of
                         `synthesize.label_splits` (train)
                         (the captioner has never seen a caption for that sound);
  no_features            the features stage has no frame embeddings for it.

Work is split into fixed chunks of the chosen clips; chunk c belongs to rank c mod world and is
written as its own Parquet part in a scratch folder, so a killed run (with any number of processes)
continues with the chunks that are missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from blat_core.atomic import atomic_path
from blat_core.data.datasets import recipe
from blat_core.data.features import FrameFeatures
from blat_core.data.prepared import PreparedDataset
from blat_core.distributed import Ranks
from blat_core.models.captioner.inference import caption_frames
from blat_core.models.captioner.io import LoadedCaptioner, load_captioner
from blat_core.params import bounded

log = logging.getLogger(__name__)

REASONS = ("evaluation_split", "evaluation_overlap", "tags_not_in_audiocaps", "no_features")
SCHEMA = pa.schema(
    [
        ("audio_id", pa.string()),
        ("caption", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("score", pa.float32()),
        ("captioner", pa.string()),
        ("beam", pa.int16()),
    ]
)


@dataclass
class SynthesizeParams:
    """The `synthesize` section of params.yaml."""

    beam: int = bounded(ge=1)
    max_tokens: int = bounded(ge=1)
    batch_size: int = bounded(ge=1)
    chunk_clips: int = bounded(ge=1)
    # AudioCaps splits whose clips' labels a kept AudioSet clip's labels must all be among (SPEC §2
    # says "AudioCaps clips"; train alone keeps evaluation captions from shaping the synthetic set).
    label_splits: list[str] = field(default_factory=lambda: ["train"])


@dataclass
class Selection:
    """The clips to caption (in a fixed order) and how many were dropped, by reason."""

    audio_ids: list[str]
    tags: dict[str, list[str]]
    dropped: dict[str, int]
    allowed_labels: int


def select_clips(
    audioset: PreparedDataset, audiocaps: PreparedDataset, features: FrameFeatures, label_splits: list[str]
) -> Selection:
    """Apply the synthesis filter (see the module docstring) to every prepared AudioSet clip."""
    allowed = {mid for row in audiocaps.rows() if row["split"] in label_splits for mid in row["tag_mids"]}
    have_features = set(features.ids)
    dropped: Counter = Counter({reason: 0 for reason in REASONS})
    kept, tags = [], {}
    for row, trainable in zip(audioset.rows(), audioset.training_mask(), strict=True):  # the leakage gate
        if not trainable:
            dropped["evaluation_split" if row["split"] in recipe("audioset").eval_splits else "evaluation_overlap"] += 1
        elif not set(row["tag_mids"]) <= allowed:
            dropped["tags_not_in_audiocaps"] += 1
        elif row["audio_id"] not in have_features:
            dropped["no_features"] += 1
        else:
            kept.append(row["audio_id"])
            tags[row["audio_id"]] = list(row["tag_mids"])
    return Selection(sorted(kept), tags, dict(dropped), len(allowed))


@torch.no_grad()
def caption_chunk(
    captioner: LoadedCaptioner,
    features: FrameFeatures,
    audio_ids: list[str],
    tags: dict[str, list[str]],
    params: SynthesizeParams,
    device,
) -> pa.Table:
    """Beam-search captions for `audio_ids`, batched; longest clips first within the chunk (less padding)."""
    order = sorted(audio_ids, key=lambda a: (-features.num_frames(a), a))
    rows = {"audio_id": [], "caption": [], "tags": [], "score": []}
    for start in range(0, len(order), params.batch_size):
        batch_ids = order[start : start + params.batch_size]
        arrays = [features.frames(a) for a in batch_ids]
        captions, scores = caption_frames(captioner, arrays, [tags[a] for a in batch_ids], params.beam,
                                          params.max_tokens, device)  # fmt: skip
        rows["audio_id"] += batch_ids
        rows["caption"] += captions
        rows["tags"] += [tags[a] for a in batch_ids]
        rows["score"] += scores
    count = len(rows["audio_id"])
    rows["captioner"] = [captioner.digest] * count
    rows["beam"] = [params.beam] * count
    return pa.table(rows, schema=SCHEMA).sort_by("audio_id")


def synthesize(
    captioner: LoadedCaptioner,
    features: FrameFeatures,
    selection: Selection,
    params: SynthesizeParams,
    out: Path,
    scratch: Path,
    device,
    ranks: Ranks,
    stop_after_chunks: int | None = None,
) -> dict:
    """Caption this rank's chunks not already in `scratch`; rank 0 then merges every part into
    `out` / captions.parquet. Returns this rank's counts ({"complete": False} when stopped early)."""
    fingerprint = hashlib.sha256(
        json.dumps([captioner.digest, params.beam, params.max_tokens, params.chunk_clips, selection.audio_ids]).encode()
    ).hexdigest()
    parts = Path(scratch) / "parts"
    if ranks.rank == 0:
        _reset_if_stale(Path(scratch), fingerprint)
    ranks.barrier()
    chunks = [
        selection.audio_ids[start : start + params.chunk_clips]
        for start in range(0, len(selection.audio_ids), params.chunk_clips)
    ]
    mine = [c for c in range(len(chunks)) if c % ranks.world == ranks.rank]
    todo = [c for c in mine if not (parts / _part_name(c)).is_file()]
    log.info("rank %d: %d of its %d chunks to caption (%d done before)", ranks.rank, len(todo), len(mine),
             len(mine) - len(todo))  # fmt: skip
    captioned, started = 0, time.perf_counter()
    for done, chunk in enumerate(tqdm(todo, desc="synthesize", unit="chunk", disable=ranks.rank != 0)):
        if stop_after_chunks is not None and done >= stop_after_chunks:
            return {"complete": False, "captioned": captioned}
        table = caption_chunk(captioner, features, chunks[chunk], selection.tags, params, device)
        with atomic_path(parts / _part_name(chunk)) as tmp:
            pq.write_table(table, tmp)
        captioned += table.num_rows
    elapsed = time.perf_counter() - started
    totals = torch.tensor([captioned, elapsed], dtype=torch.float64)
    if ranks.world > 1:  # clips over all ranks; the slowest rank's time
        counted = totals[:1].clone()
        torch.distributed.all_reduce(counted)
        torch.distributed.all_reduce(totals[1:], op=torch.distributed.ReduceOp.MAX)
        totals[0] = counted[0]
    if ranks.rank == 0:
        tables = [pq.read_table(parts / _part_name(c)) for c in range(len(chunks))]
        merged = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
        with atomic_path(Path(out)) as tmp:
            tmp.mkdir()
            pq.write_table(merged, tmp / "captions.parquet")
        shutil.rmtree(scratch)
    ranks.barrier()
    return {"complete": True, "captioned_this_run": int(totals[0]), "seconds": float(totals[1])}


def _part_name(chunk: int) -> str:
    return f"part_{chunk:06d}.parquet"


def _reset_if_stale(scratch: Path, fingerprint: str) -> None:
    """Parts from another captioner, params or clip list are never mixed in: start over."""
    marker = scratch / "fingerprint.txt"
    if marker.is_file() and marker.read_text() == fingerprint:
        return
    if scratch.exists():
        log.warning("%s holds parts of another configuration: starting over", scratch)
        shutil.rmtree(scratch)
    (scratch / "parts").mkdir(parents=True)
    marker.write_text(fingerprint)


# ---------------------------------------------------------------- the synthesize stage
def run_synthesize(
    params: SynthesizeParams,
    audioset: Path,
    audiocaps: Path,
    features: Path,
    captioner_folder: Path,
    out: Path,
    scratch: Path,
    ranks: Ranks,
    device,
    stop_after_chunks: int | None = None,
) -> dict | None:
    """Select, caption and merge; returns the metrics on rank 0 of a complete run, else None."""
    frames = FrameFeatures(features)
    selection = select_clips(PreparedDataset(audioset), PreparedDataset(audiocaps), frames, params.label_splits)
    total = len(selection.audio_ids) + sum(selection.dropped.values())
    log.info("%d of %d AudioSet clips kept; dropped %s", len(selection.audio_ids), total, selection.dropped)
    captioner = load_captioner(captioner_folder, device)
    if captioner.model.tags is None:
        log.warning("%s was trained without tags: the synthetic captions will not be tag-guided", captioner_folder)
    summary = synthesize(captioner, frames, selection, params, out, scratch, device, ranks, stop_after_chunks)
    if not summary["complete"] or not ranks.is_main:
        return None
    captions = pq.read_table(out / "captions.parquet", columns=["caption", "score"]).to_pydict()
    seconds = summary["seconds"]
    return {
        "synthesize": {
            "audioset_clips": total,
            "kept": len(selection.audio_ids),
            "dropped": selection.dropped,
            "audiocaps_train_labels": selection.allowed_labels,
            "captions": len(captions["caption"]),
            "distinct_captions": len(set(captions["caption"])),
            "mean_score": round(sum(captions["score"]) / max(1, len(captions["score"])), 6),
            "beam": params.beam,
            "captioner": captioner.digest,
            "throughput": {
                "captioned_this_run": summary["captioned_this_run"],
                "processes": ranks.world,
                "clips_per_s": round(summary["captioned_this_run"] / max(seconds, 1e-9), 2),
            },
        }
    }
