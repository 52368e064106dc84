"""Both fine-tunes run through the one training loop: stopped mid-way (a stand-in for a kill) and run
again, each ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from blat_core import compute
from blat_core.data.labelled import labelled_clips
from blat_core.data.pairs import RetrievalSet, caption_pairs
from blat_core.data.prepared import PreparedDataset
from blat_core.distributed import Ranks
from blat_core.eval.tasks.retrieval import RetrievalFineTuneTask, finetune_run
from blat_core.models.audio.encoder import AudioEncoderParams, build_audio_encoder
from blat_core.models.text.encoder import Tokenizer
from blat_core.train import checkpointing, loop
from blat_core.train.finetune import score_classifier, train_classifier
from blat_core.train.pretrain import contrastive_training
from tests.helpers.tiny_biencoder import make_text_folder, tiny_biencoder

CPU = torch.device("cpu")
ENCODER = AudioEncoderParams(name="cnn14", channels=[4, 8, 16, 32, 64, 64])


def _tower() -> torch.nn.Module:
    torch.manual_seed(7)  # the same starting tower for every call, as a loaded checkpoint would be
    return build_audio_encoder(ENCODER.config(16000))


def _classifier(prepared, scratch, stop_after=None):
    dataset = PreparedDataset(prepared["esc50"][0])
    data = labelled_clips(dataset).used(train=True)
    train, _ = data.evaluation_sets()[0]
    checkpointer = checkpointing.Checkpointer(scratch, "fingerprint")
    return train_classifier(_tower, data, dataset, train, seed=3, steps=6, batch_size=4, lr=1.0e-3,
                            max_samples=16000, device=CPU, checkpointer=checkpointer, checkpoint_every=2,
                            stop_after=stop_after), data, dataset  # fmt: skip


@pytest.fixture
def resumed_from(monkeypatch) -> list[int]:
    """The step each training run of the test started from (what the loop's `resume` returned): a run that
    silently started over from step 0 gives the same weights (same seeds), so the tests check this too."""
    starts: list[int] = []
    real = loop.resume

    def recording(*args, **kwargs):
        start, extra = real(*args, **kwargs)
        starts.append(start)
        return start, extra

    monkeypatch.setattr(loop, "resume", recording)
    return starts


def test_classification_finetune_resumes_to_the_same_weights(prepared, tmp_path, resumed_from):
    """Tower + head, stopped after step 4 of 6 and resumed from its checkpoint at step 4: identical weights and
    test metrics."""
    whole, data, dataset = _classifier(prepared, tmp_path / "a")
    stopped, _, _ = _classifier(prepared, tmp_path / "b", stop_after=4)
    assert stopped is None and (tmp_path / "b" / "checkpoint" / "state.json").is_file()
    resumed, _, _ = _classifier(prepared, tmp_path / "b")
    assert resumed_from == [0, 0, 4]  # the whole run, the stopped one, the resumed one
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    test = data.evaluation_sets()[0][1]
    scores = [score_classifier(model, data, dataset, test, 4, CPU) for model in (whole, resumed)]
    assert scores[0] == scores[1]
    assert not (tmp_path / "b" / "checkpoint").exists()  # a finished run clears its checkpoint


def test_retrieval_finetune_resumes_to_the_same_weights(prepared, tmp_path, resumed_from):
    """The retrieval fine-tune's contrastive run, stopped after step 2 of 5 and resumed from its checkpoint at
    step 2: the same best weights."""
    text_folder = make_text_folder(tmp_path / "text")
    task = RetrievalFineTuneTask(models=["x"], targets={"audiocaps": {"val": "val", "test": "test"}}, steps=5,
                                 warmup_steps=1, val_every=2, batch_size=4, max_seconds=1.0, checkpoint_every=2,
                                 eval_batch_size=8)  # fmt: skip
    pairs = caption_pairs([prepared["audiocaps"][0]])
    val = RetrievalSet.from_split(prepared["audiocaps"][0], "val")
    run = functools.partial(_contrastive, text_folder, pairs, val, finetune_run(task, seed=1))
    whole, whole_summary = run(tmp_path / "a")
    stopped, _ = run(tmp_path / "b", stop_after=2)
    assert stopped is None
    resumed, resumed_summary = run(tmp_path / "b")
    assert resumed_from == [0, 0, 2]
    assert resumed_summary == whole_summary
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert np.isfinite(whole_summary["best"]["geometric_mean"])


def _contrastive(text_folder, pairs, val, run, scratch, stop_after=None):
    compute.seed_everything(run.seed)
    model = tiny_biencoder(text_folder)
    checkpointer = checkpointing.Checkpointer(scratch, "fingerprint")
    return contrastive_training(model, Tokenizer(text_folder, 30), pairs, val, run, CPU, Ranks(), checkpointer,
                                stop_after=stop_after)  # fmt: skip
