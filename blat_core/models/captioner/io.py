"""A trained captioner on disk: `captioner.safetensors` + `captioner.json` (config, AudioSet classes,
training params) and `vocab.json`, in one folder; and loading it back ready to decode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary
from blat_core.models.checkpoints import CheckpointError, file_digest, load_model, load_strict, save_model


@dataclass
class LoadedCaptioner:
    model: Captioner
    vocab: Vocabulary
    classes: list[tuple[str, str]]
    digest: str  # sha256 of the weights file: the provenance synthetic captions carry
    beam: int  # how it was trained to be decoded (its `captioner` params): the default of every caller
    max_tokens: int


def save_captioner(
    folder: Path, state: dict[str, torch.Tensor], config: dict, vocab: Vocabulary, classes, params: dict
) -> None:
    """Write the model files into an existing `folder` (the caller makes the folder appear atomically)."""
    meta = {"classes": [list(c) for c in classes], "params": params}
    save_model(Path(folder) / "captioner", state, kind="captioner", config=config, meta=meta)
    vocab.save(Path(folder) / "vocab.json")


def load_captioner(folder: str | Path, device: torch.device | str = "cpu") -> LoadedCaptioner:
    """The model a `captioner@<variant>` stage wrote, in eval mode on `device`."""
    folder = Path(folder)
    state, config, meta = load_model(folder / "captioner", kind="captioner")
    model = Captioner(**config)
    load_strict(model, state, str(folder / "captioner.safetensors"))
    decoding = {key: (meta.get("params") or {}).get(key) for key in ("beam", "max_tokens")}
    for key, value in decoding.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CheckpointError(f"{folder / 'captioner.json'}: params.{key} is {value!r}, not a positive "
                                  "integer; not a file a `captioner@<variant>` stage wrote (re-run it)")  # fmt: skip
    return LoadedCaptioner(
        model.to(device).eval(),
        Vocabulary.load(folder / "vocab.json"),
        [tuple(c) for c in meta["classes"]],
        file_digest(folder / "captioner.safetensors", "sha256"),
        decoding["beam"],
        decoding["max_tokens"],
    )
