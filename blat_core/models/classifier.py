"""A fine-tuned classifier kept as a model (the `finetuned@<name>` stage): a BLAT model folder whose audio tower
was fine-tuned, plus a linear head on the tower's clip embedding (before BLAT's projection). `blat export` copies
the two classifier files into the exported folder, which `load_classifier` reads as well.

    blat.json, blat.safetensors, text/     the BLAT model (embed, serve, export and zero-shot classify read it)
    classifier.json                        {"kind": "classifier", "config": {classes, multi_label, dataset}, "meta"}
    classifier.safetensors                 the head: weight (classes, tower width), bias (classes)
"""

from __future__ import annotations

from pathlib import Path

import torch

from blat_core.models.blat_model import load_blat
from blat_core.models.checkpoints import CheckpointError, load_model, load_strict, save_model

CLASSIFIER = "classifier"


def has_classifier(folder: str | Path) -> bool:
    return (Path(folder) / f"{CLASSIFIER}.json").is_file()


def save_classifier(folder: str | Path, head: torch.nn.Linear, classes: list[str], multi_label: bool, dataset: str,
                    meta: dict) -> None:  # fmt: skip
    config = {"classes": list(classes), "multi_label": bool(multi_label), "dataset": dataset,
              "input": "the audio tower's clip embedding (mean over time), before the projection"}  # fmt: skip
    save_model(Path(folder) / CLASSIFIER, head.state_dict(), kind="classifier", config=config, meta=meta)


class Classifier(torch.nn.Module):
    """Audio tower + head; `encode_audio` gives class probabilities (softmax, or sigmoid when multi-label), so a
    window-by-window embedder (`blat_core.models.inference.WindowEmbedder`, mean=True) averages them per file."""

    def __init__(self, tower: torch.nn.Module, head: torch.nn.Linear, classes: list[str], multi_label: bool):
        super().__init__()
        self.audio_encoder, self.head = tower, head
        self.classes, self.multi_label = classes, multi_label
        self.embed_dim = len(classes)

    def encode_audio(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.head(self.audio_encoder.forward_embedding(waveform, lengths).float())
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)


def load_classifier(folder: str | Path, device: torch.device | str = "cpu") -> Classifier:
    """The fine-tuned tower and its head, in eval mode; a head that does not fit the tower is a CheckpointError."""
    folder = Path(folder)
    state, config, _ = load_model(folder / CLASSIFIER, kind="classifier")
    if (folder / "blat.json").is_file():
        model, _, _ = load_blat(folder, "cpu")
    else:  # an exported folder (`blat export` copies the head beside config.json)
        from blat_core.models.portable import load_model as load_exported

        model = load_exported(folder).model.cpu()
    classes = config.get("classes")
    weight = state.get("weight")
    if not isinstance(classes, list) or weight is None or tuple(weight.shape) != (
        len(classes), model.audio_encoder.embedding_dim
    ):  # fmt: skip
        raise CheckpointError(f"{folder}/{CLASSIFIER}.safetensors does not fit its classes and the audio tower: "
                              "export the fine-tuned model again")  # fmt: skip
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    load_strict(head, state, f"{folder}/{CLASSIFIER}.safetensors")
    return Classifier(model.audio_encoder, head, classes, bool(config.get("multi_label"))).to(device).eval()
