"""synthesize: the tag filter keeps no evaluation clip and no clip with a label unseen in AudioCaps;
a stopped run resumes to the same Parquet; two processes write what one writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from blat_core.bootstrap.features import FeaturesParams, extract
from blat_core.bootstrap.synthesis import REASONS, SynthesizeParams, select_clips, synthesize
from blat_core.data.datasets import recipe
from blat_core.data.features import FrameFeatures
from blat_core.data.prepared import PreparedDataset, read_classes
from blat_core.distributed import Ranks
from blat_core.models.audio.encoder import AudioEncoderParams, build_audio_encoder
from blat_core.models.captioner.io import load_captioner, save_captioner
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary
from tests.conftest import ROOT, project_params
from tests.test_features import _free_port

CPU = torch.device("cpu")
PARAMS = SynthesizeParams(beam=3, max_tokens=8, batch_size=8, chunk_clips=10)


@pytest.fixture(scope="module")
def inputs(prepared, tmp_path_factory):
    """(prepared audioset, prepared audiocaps, audioset features, captioner folder) for the tiny corpus."""
    audioset, audiocaps = prepared["audioset"][0], prepared["audiocaps"][0]
    root = tmp_path_factory.mktemp("synthesis")
    torch.manual_seed(0)
    encoder = build_audio_encoder(AudioEncoderParams("cnn14", [4, 8, 16, 32, 64, 64]).config(16000, num_classes=5))
    extract(encoder, PreparedDataset(audioset), root / "features", FeaturesParams(["audioset"], 8, 1), CPU, Ranks())
    classes = read_classes(audioset)
    captions = [c for r in PreparedDataset(audiocaps).rows(split="train") for c in r["captions"]]
    vocab = Vocabulary.build(captions)
    config = {"feature_dim": 64, "vocab_size": len(vocab), "num_tags": len(classes), "use_tags": True}
    config.update(hidden=16, d_model=16, heads=2, ffn=32)
    (root / "captioner").mkdir()
    decoding = {"beam": 3, "max_tokens": 20}  # as the captioner params record them
    save_captioner(root / "captioner", Captioner(**config).state_dict(), config, vocab, classes, decoding)
    return audioset, audiocaps, root / "features", root / "captioner"


def test_filter_drops_every_evaluation_clip_and_unseen_labels(inputs):
    """Counts add up; kept clips are trainable, outside AudioSet eval, and only carry AudioCaps labels."""
    audioset, audiocaps, features, _ = inputs
    dataset = PreparedDataset(audioset)
    selection = select_clips(dataset, PreparedDataset(audiocaps), FrameFeatures(features), ["train"])
    assert set(selection.dropped) == set(REASONS)
    assert len(selection.audio_ids) + sum(selection.dropped.values()) == len(dataset)
    allowed = {m for r in PreparedDataset(audiocaps).rows(split="train") for m in r["tag_mids"]}
    for audio_id in selection.audio_ids:
        row = dataset.row(audio_id)
        assert row["trainable"] and row["split"] not in recipe("audioset").eval_splits
        assert set(row["tag_mids"]) <= allowed
    # The tiny corpus has each kind of clip the filter must drop (the demo's uncaptioned classes too).
    for reason in ("evaluation_split", "evaluation_overlap", "tags_not_in_audiocaps"):
        assert selection.dropped[reason] > 0, reason
    assert selection.audio_ids


def _run(inputs, out, scratch, stop_after_chunks=None):
    audioset, audiocaps, features, captioner = inputs
    frames = FrameFeatures(features)
    selection = select_clips(PreparedDataset(audioset), PreparedDataset(audiocaps), frames, ["train"])
    model = load_captioner(captioner)
    return selection, synthesize(model, frames, selection, PARAMS, out, scratch, CPU, Ranks(), stop_after_chunks)


def test_stopped_run_resumes_to_the_same_captions(inputs, tmp_path):
    """A run stopped after 2 chunks continues with the rest and writes exactly what an unbroken run writes."""
    selection, whole = _run(inputs, tmp_path / "whole", tmp_path / "scratch_whole")
    assert whole["complete"] and whole["captioned_this_run"] == len(selection.audio_ids)
    assert not (tmp_path / "scratch_whole").exists()  # scratch removed once merged

    _, stopped = _run(inputs, tmp_path / "resumed", tmp_path / "scratch", stop_after_chunks=2)
    assert not stopped["complete"] and not (tmp_path / "resumed").exists()
    assert len(list((tmp_path / "scratch" / "parts").glob("part_*.parquet"))) == 2
    _, resumed = _run(inputs, tmp_path / "resumed", tmp_path / "scratch")
    assert resumed["captioned_this_run"] == len(selection.audio_ids) - 2 * PARAMS.chunk_clips

    expected = pq.read_table(tmp_path / "whole" / "captions.parquet")
    got = pq.read_table(tmp_path / "resumed" / "captions.parquet")
    assert got.equals(expected)
    assert expected.column("audio_id").to_pylist() == selection.audio_ids
    assert set(expected.column("beam").to_pylist()) == {3}
    assert len(set(expected.column("captioner").to_pylist())) == 1


def test_stale_parts_are_not_reused(inputs, tmp_path):
    """Parts written by another captioner or params are discarded, not merged in."""
    _run(inputs, tmp_path / "a", tmp_path / "scratch", stop_after_chunks=1)
    (tmp_path / "scratch" / "fingerprint.txt").write_text("another configuration")
    _, summary = _run(inputs, tmp_path / "a", tmp_path / "scratch")
    selection, _ = _run(inputs, tmp_path / "b", tmp_path / "scratch_b")
    assert summary["captioned_this_run"] == len(selection.audio_ids)


@pytest.mark.slow
def test_two_processes_write_what_one_writes(inputs, tmp_path):
    """torchrun with 2 CPU processes (gloo) splits the chunks; the merged Parquet equals one process's."""
    audioset, audiocaps, features, captioner = inputs
    params = project_params()
    params["synthesize"].update(max_tokens=8, batch_size=8, chunk_clips=10)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"out{processes}"
        command = [str(ROOT / "stages" / "synthesize.py"), "--audioset", str(audioset), "--audiocaps", str(audiocaps)]
        command += ["--features", str(features), "--captioner", str(captioner), "--out", str(out)]
        command += ["--metrics", str(tmp_path / f"m{processes}.json"), "--scratch", str(tmp_path / f"s{processes}")]
        command += ["--params", str(tmp_path / "params.yaml")]
        launch = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}"]
        launch += ["--master-addr=127.0.0.1", f"--master-port={_free_port()}"]
        subprocess.run([*launch, *command], env=env, check=True, capture_output=True, timeout=300)
        outputs[processes] = pq.read_table(out / "captions.parquet")
    assert outputs[2].equals(outputs[1])
    assert yaml.safe_load((tmp_path / "m2.json").read_text())["synthesize"]["throughput"]["processes"] == 2
