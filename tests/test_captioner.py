"""Captioner parts: vocabulary, tag guidance (no NaN without tags), and batched beam search equal to
the one-clip-at-a-time reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blat_core.models.captioner.beam_search import beam_search, beam_search_one
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary, tokenize
from blat_core.train import checkpointing
from blat_core.train.captioner import CaptionData, CaptionerParams, train_captioner
from blat_core.train.schedules import warmup_exponential


def test_tokenize_and_vocabulary_round_trip(tmp_path):
    assert tokenize("A dog barks, then a siren wails.") == ["a", "dog", "barks", "then", "a", "siren", "wails"]
    vocab = Vocabulary.build(["A dog barks.", "A cat meows; a dog barks"])
    assert vocab.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"] and vocab.words[4:7] == ["a", "barks", "dog"]
    ids = vocab.encode("a dog meows loudly")
    assert ids[0] == vocab.start and ids[-1] == vocab.end and vocab.index["<unk>"] in ids
    assert vocab.decode(ids) == "a dog meows <unk>"
    assert len(vocab.encode(" ".join(["word"] * 50))) == 22  # capped at 20 words + <start>/<end>
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").words == vocab.words


def _model(use_tags: bool = True, seed: int = 0) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(
        feature_dim=16, vocab_size=30, num_tags=7, use_tags=use_tags, hidden=16, d_model=16, heads=2, ffn=32
    ).eval()


def _inputs(batch: int = 5, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randn(batch, 9, 16, generator=generator)
    lengths = torch.tensor([9, 4, 7, 1, 9][:batch])
    tags = (torch.rand(batch, 7, generator=generator) > 0.6).float()
    tags[1] = 0  # a clip without tags
    return frames, lengths, tags


def test_tags_change_the_output_and_no_tags_gives_no_nan():
    frames, lengths, tags = _inputs()
    tokens = torch.randint(0, 30, (5, 6))
    with_tags = _model(True)(frames, lengths, tags, tokens)
    assert torch.isfinite(with_tags).all()
    assert not torch.allclose(with_tags, _model(True)(frames, lengths, tags * 0, tokens))
    without = _model(False)
    assert without.tags is None and torch.isfinite(without(frames, lengths, tags, tokens)).all()


@pytest.mark.parametrize("use_tags", [True, False])
@pytest.mark.parametrize(("seed", "end_bias"), [(1, 1.0), (0, 1.5)])
def test_batched_beam_search_equals_one_at_a_time(use_tags, seed, end_bias):
    """Same tokens and scores as the straightforward per-clip search (float64 rules out near-ties)."""
    model = _model(use_tags, seed).double()
    with torch.no_grad():
        model.output.bias[2] += end_bias  # <end> likely enough that hypotheses finish at different steps
    frames, lengths, tags = _inputs()
    frames, tags = frames.double(), tags.double()
    batched, scores = beam_search(model, frames, lengths, tags, start=1, end=2, beam=3, max_tokens=20)
    for b in range(len(frames)):
        tokens, score = beam_search_one(
            model, frames[b], int(lengths[b]), tags[b], start=1, end=2, beam=3, max_tokens=20
        )
        assert batched[b] == tokens, b
        assert float(scores[b]) == pytest.approx(score, rel=1e-9)
    assert max(len(t) for t in batched) <= 20
    if (seed, use_tags) == (1, True):  # this case finishes hypotheses at varied steps: the carry logic is exercised
        assert len({len(t) for t in batched}) > 2


def _caption_data(seed: int, clips: int = 12) -> CaptionData:
    rng = np.random.default_rng(seed)
    words = ["a", "dog", "barks", "cat", "meows", "siren", "wails", "loudly"]
    captions = [[" ".join(rng.choice(words, size=rng.integers(3, 7))) for _ in range(2)] for _ in range(clips)]
    return CaptionData(
        ids=[f"clip{i}" for i in range(clips)],
        frames=[rng.standard_normal((int(rng.integers(2, 6)), 16)).astype(np.float32) for _ in range(clips)],
        tags=(rng.random((clips, 7)) > 0.6).astype(np.float32),
        captions=captions,
    )


def _train(tmp_path, name: str, stop_after_epochs=None):
    params = CaptionerParams(
        epochs=3, batch_size=4, lr=1.0e-3, weight_decay=1.0e-6, warmup_steps=2, final_lr=1.0e-5,
        label_smoothing=0.1, teacher_forcing_start=1.0, teacher_forcing_end=0.7, grad_clip=1.0,
        average_last=2, beam=2, max_tokens=8,
    )  # fmt: skip
    train, val = _caption_data(0), _caption_data(1, clips=4)
    vocab = Vocabulary.build([c for caps in train.captions for c in caps])
    torch.manual_seed(0)
    model = Captioner(16, len(vocab), 7, True, hidden=16, d_model=16, heads=2, ffn=32)
    checkpointer = checkpointing.Checkpointer(tmp_path / "scratch", "fingerprint")
    return train_captioner(model, vocab, train, val, params, torch.device("cpu"), checkpointer,
                           tmp_path / name, stop_after_epochs)  # fmt: skip


def test_captioner_training_resumes_to_the_same_result(tmp_path):
    """Stopped after epoch 1 and resumed, training ends with exactly the weights of an unbroken run."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole, whole_history = _train(tmp_path / "a", "live")
    assert not (tmp_path / "a" / "scratch" / "checkpoint").exists()  # cleared once done
    stopped, history = _train(tmp_path / "b", "live", stop_after_epochs=1)
    assert stopped is None and len(history) == 1
    assert (tmp_path / "b" / "scratch" / "checkpoint" / "state.json").is_file()
    resumed, resumed_history = _train(tmp_path / "b", "live")
    assert resumed_history == whole_history and len(whole_history) == 4  # 3 epochs + the averaged model
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
    curve = (tmp_path / "b" / "live" / "plots" / "metrics" / "val_cider.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in curve[1:]] == ["6", "12", "18"]  # one point per epoch, none twice


def test_lr_multiplier_warms_up_then_decays_to_final_lr():
    """Linear warmup to 1, then exponential decay that reaches final_lr/lr at the last step."""
    assert warmup_exponential(0, 100, 10, 5.0e-4, 5.0e-7) == pytest.approx(0.1)
    assert warmup_exponential(9, 100, 10, 5.0e-4, 5.0e-7) == pytest.approx(1.0)
    assert warmup_exponential(10, 100, 10, 5.0e-4, 5.0e-7) == pytest.approx(1.0)
    assert warmup_exponential(99, 100, 10, 5.0e-4, 5.0e-7) == pytest.approx(1.0e-3)
