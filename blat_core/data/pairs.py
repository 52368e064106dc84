"""Audio–caption pairs for contrastive training: the synthetic AudioSet captions (stage 1) or the
real captions of AudioCaps, Clotho and MACS (stage 2), one item per (clip, caption)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from blat_core.data.batching import crop
from blat_core.data.prepared import PreparedDataset

log = logging.getLogger(__name__)


@dataclass
class Pairs:
    """Items (source index, audio_id, caption) over one or more prepared datasets."""

    sources: list[PreparedDataset] = field(default_factory=list)
    items: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, prepared: PreparedDataset, pairs: list[tuple[str, str]]) -> None:
        self.sources.append(prepared)
        source = len(self.sources) - 1
        self.items += [(source, audio_id, caption) for audio_id, caption in pairs]

    def caption(self, index: int) -> str:
        return self.items[index][2]

    @property
    def sample_rates(self) -> set[int]:
        return {s.sample_rate for s in self.sources}


def synthetic_pairs(audioset: str | Path, captions: str | Path) -> Pairs:
    """Stage-1 data: each synthetic caption with its AudioSet clip (every clip must be prepared)."""
    prepared = PreparedDataset(audioset)
    table = pq.read_table(captions, columns=["audio_id", "caption"]).to_pydict()
    missing = [a for a in table["audio_id"] if a not in prepared]
    if missing:
        raise ValueError(
            f"{captions}: {len(missing)} clips are not in {audioset} (e.g. {missing[:3]}): re-run synthesize"
        )
    trainable = prepared.training_ids()
    held_out = [a for a in table["audio_id"] if a not in trainable]
    if held_out:  # the leakage gate: synthesize drops them; a file from elsewhere may not
        raise ValueError(f"{captions}: {len(held_out)} clips are evaluation clips, which no stage may train on "
                         f"(e.g. {held_out[:3]}): re-run synthesize")  # fmt: skip
    pairs = Pairs()
    pairs.add(prepared, list(zip(table["audio_id"], table["caption"], strict=True)))
    return pairs


def caption_pairs(folders: list[str | Path]) -> Pairs:
    """Stage-2 data: every caption of every trainable clip (leakage-flagged and evaluation clips never)."""
    pairs = Pairs()
    for folder in folders:
        prepared = PreparedDataset(folder)
        items = [(row["audio_id"], c) for row in prepared.training_rows() for c in row["captions"]]
        if not items:
            raise ValueError(f"{folder} has no trainable captioned clips")
        pairs.add(prepared, items)
        log.info("%s: %d training captions", prepared.name, len(items))
    return pairs


class PairClips(torch.utils.data.Dataset):
    """Item (index, crop seed or None) -> (int16 waveform, index), like batching.ClipDataset."""

    def __init__(self, pairs: Pairs, max_samples: int | None):
        self.pairs, self.max_samples = pairs, max_samples

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: tuple[int, tuple | None]) -> tuple[torch.Tensor, int]:
        index, seed = item
        source, audio_id, _ = self.pairs.items[index]
        wave = crop(self.pairs.sources[source].waveform(audio_id), self.max_samples, seed)
        return torch.from_numpy(np.ascontiguousarray(wave)), index


@dataclass
class RetrievalSet:
    """An evaluation split for retrieval: clips and their captions, caption j belonging to clip caption_audio[j]."""

    prepared: PreparedDataset
    audio_ids: list[str]
    captions: list[str]
    caption_audio: np.ndarray

    @staticmethod
    def from_split(folder: str | Path, split: str) -> RetrievalSet:
        prepared = PreparedDataset(folder)
        rows = [r for r in prepared.evaluation_rows(split) if r["captions"]]
        if not rows:
            raise ValueError(f"{folder} has no captioned clips in split {split!r}")
        captions = [c for r in rows for c in r["captions"]]
        owners = np.array([i for i, r in enumerate(rows) for _ in r["captions"]])
        return RetrievalSet(prepared, [r["audio_id"] for r in rows], captions, owners)

    def subset(self, keep: set[str]) -> RetrievalSet:
        """Only the clips in `keep`, with their captions (order kept)."""
        clips = [i for i, a in enumerate(self.audio_ids) if a in keep]
        new = {old: n for n, old in enumerate(clips)}
        chosen = [j for j, owner in enumerate(self.caption_audio) if int(owner) in new]
        return RetrievalSet(self.prepared, [self.audio_ids[i] for i in clips], [self.captions[j] for j in chosen],
                            np.array([new[int(self.caption_audio[j])] for j in chosen], dtype=self.caption_audio.dtype))
