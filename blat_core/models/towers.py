"""Which model an evaluation task means: a folder name under the models root or a folder path, and the
frozen CNN14 audio tower inside it (BLAT's audio encoder, or the tagger's: our PANNs)."""

from __future__ import annotations

from pathlib import Path

import torch

TAGGER = "tagger"  # the model name that means "the tagger's audio tower" (our PANNs)
EXTERNAL_PREFIX = "external:"  # a model imported by the import_external stage (evaluate.external_models)


def model_folder(models_root: Path, name: str) -> Path:
    """A task's model entry: a folder name under the models root (`blat_stage2`), or a path with a slash
    (`data/imported/blat_official`, `/models/blat_official`) to a folder made elsewhere, e.g. by
    `blat import-blat`; `external:<name>` is the `import_external` stage's folder `<models root>/external/<name>`."""
    if name.startswith(EXTERNAL_PREFIX):
        return Path(models_root) / "external" / name[len(EXTERNAL_PREFIX) :]
    return Path(name) if "/" in name else Path(models_root) / name


def audio_tower(model_name: str, models_root: Path) -> torch.nn.Module:
    """A fresh copy of a model's CNN14 tower (BLAT's audio encoder, or the tagger's), on the CPU."""
    if model_name == TAGGER:
        from blat_core.models.audio.encoder import load_audio_encoder

        return load_audio_encoder(Path(models_root) / TAGGER)[0]
    from blat_core.models.blat_model import load_blat

    return load_blat(model_folder(models_root, model_name))[0].audio_encoder


def scratch_name(dataset: str, model_name: str) -> str:
    """A flat folder name for one (dataset, model) run, also when the model entry is a path."""
    return f"{dataset}_{model_name.strip('/').replace('/', '_').replace(':', '_')}"
