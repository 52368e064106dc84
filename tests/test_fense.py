"""FENSE from local files: the similarity is the mean cosine of Sentence-BERT embeddings, the error
penalty multiplies by 0.1 exactly when the detector's error probability exceeds 0.9, and missing
files give "unavailable" with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blat_core.eval.metrics.captions import LocalModels, caption_scores
from blat_core.eval.metrics.fense import ErrorDetector, Fense
from blat_core.models.text.encoder import resolve_folder
from tests.helpers.tiny_biencoder import make_text_folder

REFERENCES = {"a": ["a dog barks", "a dog is barking loudly"], "b": ["rain falls on a roof", "heavy rain"]}
CANDIDATES = {"a": "a dog barks loudly", "b": "a car passes by"}


@pytest.fixture(scope="module")
def detector_files(tmp_path_factory):
    """A tiny error detector (random BERT, planted output bias) saved as the authors' checkpoint format."""
    root = tmp_path_factory.mktemp("fense")
    encoder = make_text_folder(root / "encoder")
    paths = {}
    for name, bias in (("fluent", -20.0), ("flagged", 20.0)):
        torch.manual_seed(0)
        model = ErrorDetector(encoder, num_classes=5)
        with torch.no_grad():
            model.clf.weight.zero_()
            model.clf.bias.fill_(bias)  # P(error) ~ 0 or ~ 1 for every caption
        paths[name] = root / f"{name}.ckpt"
        torch.save({"model_type": "tiny", "num_classes": 5, "state_dict": model.state_dict()}, paths[name])
    return encoder, paths


def test_fense_is_sbert_similarity_with_the_error_penalty(detector_files):
    encoder, paths = detector_files
    sbert = resolve_folder("")  # the all-MiniLM-L6-v2 sentence-transformers folder the package ships
    fluent = Fense(sbert, paths["fluent"], encoder)
    flagged = Fense(sbert, paths["flagged"], encoder)
    ids = sorted(REFERENCES)
    candidates, references = [CANDIDATES[i] for i in ids], [REFERENCES[i] for i in ids]

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(sbert), device="cpu")
    expected = []
    for candidate, refs in zip(candidates, references, strict=True):
        vectors = model.encode([candidate, *refs], normalize_embeddings=True)
        expected.append(float(np.mean(vectors[1:] @ vectors[0])))
    assert fluent.corpus_score(candidates, references) == pytest.approx(np.mean(expected), rel=1e-5)
    assert flagged.corpus_score(candidates, references) == pytest.approx(0.1 * np.mean(expected), rel=1e-5)
    assert expected[0] > expected[1]  # the paraphrase is closer than the wrong sound

    scores = caption_scores(REFERENCES, CANDIDATES, LocalModels("", str(sbert), str(paths["fluent"]), str(encoder)))
    assert scores["fense"] == pytest.approx(np.mean(expected), rel=1e-5) and "fense" not in scores["unavailable"]


def test_fense_unavailable_with_reason(tmp_path):
    scores = caption_scores(REFERENCES, CANDIDATES)
    assert scores["fense"] is None and "fense_sbert_dir" in scores["unavailable"]["fense"]
    missing = caption_scores(REFERENCES, CANDIDATES, LocalModels("", str(tmp_path / "nope"), "x", "y"))
    assert missing["fense"] is None and "does not exist" in missing["unavailable"]["fense"]
