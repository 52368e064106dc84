"""The caption metrics' optional local models (CoreNLP for SPICE, the FENSE models) and the error a
metric raises when what it needs is missing here."""

from __future__ import annotations

from dataclasses import dataclass


class MetricsUnavailable(RuntimeError):
    """A metric cannot run here (missing Java, model files); the message says what to provide."""


@dataclass(frozen=True)
class LocalModels:
    """Where the optional metrics find their files (empty: that metric is reported unavailable)."""

    corenlp_dir: str = ""
    fense_sbert_dir: str = ""
    fense_echecker: str = ""
    fense_echecker_encoder_dir: str = ""
