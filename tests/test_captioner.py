"""Captioner parts: vocabulary, tag guidance (no NaN without tags), and batched beam search equal to
the one-clip-at-a-time reference."""

from __future__ import annotations

import pytest
import torch

from blat_core.captioner.beam_search import beam_search, beam_search_one
from blat_core.captioner.model import Captioner
from blat_core.captioner.vocab import Vocabulary, tokenize


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
