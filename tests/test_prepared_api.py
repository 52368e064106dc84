"""The data API: random access by id, manifest iteration, and multi-worker DataLoader use."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from blat_core.data.prepared import PreparedDataset, WaveformDataset


def test_random_access_matches_shards(prepared):
    """waveform(id) is exactly the slice the shard's own offset table names."""
    dataset = PreparedDataset(prepared["audioset"][0])
    ids = dataset.ids
    rng = np.random.default_rng(0)
    for audio_id in rng.choice(ids, 10, replace=False):
        row = dataset.row(audio_id)
        with h5py.File(dataset.folder / f"waves_{row['shard']:05d}.h5") as shard:
            position = list(shard["audio_id"].asstr()[:]).index(audio_id)
            assert shard["offsets"][position] == row["offset"]
            expected = shard["waveform"][row["offset"] : row["offset"] + shard["lengths"][position]]
            assert shard["waveform"].chunks is None  # contiguous storage, no HDF5 chunking
        assert np.array_equal(dataset.waveform(audio_id), expected)
        assert dataset.waveform(audio_id).dtype == np.int16


def test_rows_filters(prepared):
    dataset = PreparedDataset(prepared["audioset"][0])
    trainable = list(dataset.training_rows())
    assert trainable and all(r["trainable"] for r in trainable)
    assert {r["split"] for r in dataset.rows(split="eval")} == {"eval"}
    with pytest.raises(KeyError, match="not in"):
        dataset.waveform("no-such-clip")


def test_multi_worker_dataloader(prepared):
    """Two DataLoader workers (each opening its own HDF5 handles) return exactly the direct reads."""
    dataset = PreparedDataset(prepared["esc50"][0])
    dataset.waveform(dataset.ids[0])  # a handle opened in the parent must not leak into workers
    loader = torch.utils.data.DataLoader(
        WaveformDataset(dataset), batch_size=None, num_workers=2, multiprocessing_context="fork"
    )
    seen = {audio_id: wave.numpy() for wave, audio_id in loader}
    assert set(seen) == set(dataset.ids)
    for audio_id, wave in seen.items():
        assert np.array_equal(wave, dataset.waveform(audio_id))


def test_small_shard_limit_gives_bounded_shards(tmp_path, tiny_corpus):
    """With a 1 MB limit, no shard holds more than 1 MB unless a single clip is larger."""
    from blat_core.data.prepare import prepare_dataset
    from tests.conftest import prepare_params_for

    params = prepare_params_for(tiny_corpus, shard_size_mb=1)
    metrics = prepare_dataset("esc50", params, {}, tmp_path, workers=2)
    shards = sorted(tmp_path.glob("waves_*.h5"))
    assert len(shards) == metrics["shards"] > 1
    for path in shards:
        with h5py.File(path) as shard:
            assert shard["waveform"].nbytes <= 2**20 or len(shard["lengths"]) == 1
    dataset = PreparedDataset(tmp_path)
    assert all(len(dataset.waveform(i)) == dataset.row(i)["num_samples"] for i in dataset.ids)
