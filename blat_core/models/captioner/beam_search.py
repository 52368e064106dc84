"""Beam search (SPEC §2: beam 3, at most 20 words, score = summed log-probability / length).

`beam_search` decodes a whole batch of clips at once (B×K hypotheses per step);
`beam_search_one` is the straightforward one-clip, list-of-hypotheses version it must equal.
Semantics shared by both: hypotheses are pruned by summed log-probability, a finished hypothesis
(one that emitted <end>) is carried unchanged, the search stops when all K are finished or after
`max_tokens` steps (so at most `max_tokens` words), and the result is the final hypothesis with the
best summed log-probability divided by its length (words plus <end>).
"""

from __future__ import annotations

import torch

from blat_core.models.captioner.model import Captioner


@torch.no_grad()
def beam_search(
    model: Captioner,
    frames: torch.Tensor,
    lengths: torch.Tensor,
    tags: torch.Tensor,
    start: int,
    end: int,
    beam: int = 3,
    max_tokens: int = 20,
) -> tuple[list[list[int]], torch.Tensor]:
    """Decode B clips together; returns each clip's best token list (without <start>/<end>) and its score."""
    batch, device = frames.shape[0], frames.device
    memory, padding = model.encode(frames, lengths)
    tag = model.tag_embedding(tags)
    # Every clip's memory repeated K times: hypotheses are rows b*K + k.
    memory, padding = memory.repeat_interleave(beam, 0), padding.repeat_interleave(beam, 0)
    tag = None if tag is None else tag.repeat_interleave(beam, 0)
    tokens = torch.full((batch, beam, 1), start, dtype=torch.long, device=device)
    # Scores accumulate in at least fp32, also when the model runs under bf16 autocast.
    score_dtype = torch.promote_types(memory.dtype, torch.float32)
    scores = torch.full((batch, beam), float("-inf"), dtype=score_dtype, device=device)
    scores[:, 0] = 0.0  # one live hypothesis at first, so the K beams do not start as copies
    finished = torch.zeros(batch, beam, dtype=torch.bool, device=device)
    lengths_out = torch.zeros(batch, beam, dtype=torch.long, device=device)
    for _ in range(max_tokens):
        logits = model.decode(tokens.flatten(0, 1), memory, padding, tag)[:, -1]
        log_probs = torch.log_softmax(logits.float(), dim=-1).to(scores.dtype).view(batch, beam, -1)
        vocab = log_probs.shape[-1]
        # A finished hypothesis is carried once, unchanged (its only continuation: <end> at no cost).
        carry = torch.full_like(log_probs, float("-inf"))
        carry[..., end] = 0.0
        log_probs = torch.where(finished[..., None], carry, log_probs)
        candidates = (scores[..., None] + log_probs).view(batch, beam * vocab)
        scores, flat = candidates.topk(beam, dim=1)
        source, word = flat // vocab, flat % vocab
        was_finished = finished.gather(1, source)
        tokens = torch.cat([tokens.gather(1, source[..., None].expand(-1, -1, tokens.shape[2])), word[..., None]], 2)
        lengths_out = lengths_out.gather(1, source) + (~was_finished).long()
        finished = was_finished | (word == end)
        if bool(finished.all()):
            break
    normalised = scores / lengths_out.clamp(min=1)
    best = normalised.argmax(dim=1)
    results = []
    for b in range(batch):
        sequence = tokens[b, best[b], 1:].tolist()
        results.append(sequence[: sequence.index(end)] if end in sequence else sequence)
    return results, normalised.gather(1, best[:, None])[:, 0]


@torch.no_grad()
def beam_search_one(
    model: Captioner,
    frames: torch.Tensor,
    length: int,
    tags: torch.Tensor,
    start: int,
    end: int,
    beam: int = 3,
    max_tokens: int = 20,
) -> tuple[list[int], float]:
    """The reference: one clip, hypotheses as Python lists, every candidate scored and sorted."""
    memory, padding = model.encode(frames[None], torch.tensor([length]))
    tag = model.tag_embedding(tags[None])
    hypotheses = [([start], 0.0, False, 0)]  # (tokens, summed log-probability, finished, length)
    for _ in range(max_tokens):
        candidates = []
        for index, (tokens, score, done, length_so_far) in enumerate(hypotheses):
            if done:
                candidates.append((score, index, end, tokens + [end], True, length_so_far))
                continue
            logits = model.decode(torch.tensor([tokens]), memory, padding, tag)[0, -1]
            log_probs = torch.log_softmax(logits.float(), dim=-1).to(memory.dtype).tolist()
            for word, log_prob in enumerate(log_probs):
                candidates.append((score + log_prob, index, word, tokens + [word], word == end, length_so_far + 1))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        hypotheses = [(tokens, score, done, n) for score, _, _, tokens, done, n in candidates[:beam]]
        if all(done for _, _, done, _ in hypotheses):
            break
    best = max(hypotheses, key=lambda h: h[1] / max(h[3], 1))
    sequence = best[0][1:]
    return (sequence[: sequence.index(end)] if end in sequence else sequence), best[1] / max(best[3], 1)
