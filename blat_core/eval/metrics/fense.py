"""FENSE (Zhou et al., 2022) from local model files only: Sentence-BERT similarity of a candidate to
its references, penalised when a fluency-error detector flags the candidate.

    sim(c)   = mean over references r of cos(SBERT(c), SBERT(r))
    FENSE(c) = sim(c) * (1 - 0.9 * [P(error | c) > 0.9])      corpus FENSE = mean over candidates

The error detector is the FENSE authors' checkpoint (e.g. `echecker_clotho_audiocaps_base.ckpt`: a
dict with `model_type`, `num_classes`, `state_dict`): a BERT encoder whose `[CLS]` state feeds a
linear layer; the last output is the "error" class. Its `model_type` names a hub model, so the
encoder's config and tokenizer come from a local folder you give. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from blat_core.eval.metrics.metric_models import MetricsUnavailable
from blat_core.remote_code import refuse_custom_code

ERROR_THRESHOLD, PENALTY, MAX_TOKENS = 0.9, 0.9, 64


class ErrorDetector(nn.Module):
    """BERT encoder -> [CLS] -> dropout -> linear; state-dict keys `encoder.*`, `clf.*` as in the checkpoint."""

    def __init__(self, encoder_folder: str | Path, num_classes: int):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(str(encoder_folder), local_files_only=True, trust_remote_code=False)
        self.encoder = AutoModel.from_config(config, trust_remote_code=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.clf = nn.Linear(config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.clf(self.dropout(hidden.last_hidden_state[:, 0]))


class Fense:
    """FENSE scorer; construction fails with `MetricsUnavailable` (saying what to provide) when a file is missing."""

    def __init__(self, sbert_dir: str | Path, echecker: str | Path, echecker_encoder_dir: str | Path, device="cpu"):
        for name, value in (("fense_sbert_dir", sbert_dir), ("fense_echecker", echecker),
                            ("fense_echecker_encoder_dir", echecker_encoder_dir)):  # fmt: skip
            if not value:
                raise MetricsUnavailable(
                    "FENSE needs local models: set captioner.fense_sbert_dir (a Sentence-BERT folder, e.g. "
                    "paraphrase-TinyBERT-L6-v2), captioner.fense_echecker (echecker_clotho_audiocaps_base.ckpt) "
                    f"and captioner.fense_echecker_encoder_dir (its BERT's config and tokenizer); {name} is empty"
                )
            if not Path(value).exists():
                raise MetricsUnavailable(f"FENSE: {name}={value} does not exist")
        from sentence_transformers import SentenceTransformer
        from transformers import AutoTokenizer

        self.device = torch.device(device)
        for folder in (sbert_dir, echecker_encoder_dir):
            refuse_custom_code(folder)
        self.sbert = SentenceTransformer(str(sbert_dir), device=str(self.device), local_files_only=True,
                                         trust_remote_code=False)  # fmt: skip
        state = torch.load(echecker, map_location="cpu", weights_only=True)
        self.detector = ErrorDetector(echecker_encoder_dir, int(state["num_classes"]))
        state_dict = {k: v for k, v in state["state_dict"].items() if not k.endswith("position_ids")}
        self.detector.load_state_dict(state_dict, strict=True)
        self.detector.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(echecker_encoder_dir), local_files_only=True,
                                                       trust_remote_code=False)  # fmt: skip

    def similarities(self, candidates: list[str], references: list[list[str]]) -> np.ndarray:
        flat = [r for refs in references for r in refs]
        cand = self.sbert.encode(candidates, convert_to_tensor=True, normalize_embeddings=True)
        refs = self.sbert.encode(flat, convert_to_tensor=True, normalize_embeddings=True)
        bounds = np.cumsum([0] + [len(r) for r in references])
        return np.array([float((cand[i] @ refs[bounds[i] : bounds[i + 1]].T).mean()) for i in range(len(candidates))])

    @torch.no_grad()
    def error_probabilities(self, candidates: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        for start in range(0, len(candidates), batch_size):
            batch = self.tokenizer(candidates[start : start + batch_size], truncation=True, padding="max_length",
                                   max_length=MAX_TOKENS, return_tensors="pt")  # fmt: skip
            batch = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
            out.append(torch.sigmoid(self.detector(**batch))[:, -1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def corpus_score(self, candidates: list[str], references: list[list[str]]) -> float:
        penalised = self.similarities(candidates, references) * (
            1 - PENALTY * (self.error_probabilities(candidates) > ERROR_THRESHOLD)
        )
        return float(penalised.mean())
