"""Building a BLAT bi-encoder from its parts, and the exported model folder.

Model folder (what `pretrain_*` stages write and `load_blat` reads):
    blat.safetensors   every weight of the bi-encoder
    blat.json          {"kind": "biencoder", "config": {audio, text, embed_dim, logit_scale_max,
                        sample_rate}, "meta": {...}}
    text/              the text tower's transformers config and tokenizer files
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from blat_core.models.audio.encoder import build_audio_encoder, load_audio_encoder
from blat_core.models.biencoder import BiEncoder
from blat_core.models.checkpoints import CheckpointError, check_sizes, load_model, load_strict, save_model
from blat_core.models.text.encoder import Tokenizer, build_text_encoder

log = logging.getLogger(__name__)
TEXT_FOLDER = "text"


def build_biencoder(config: dict) -> BiEncoder:
    """A bi-encoder from a config dict (as blat.json holds it; the text folder must already be absolute)."""
    return BiEncoder(
        build_audio_encoder({**config["audio"], "num_classes": 0}),
        build_text_encoder(config["text"]),
        config["embed_dim"],
        config.get("logit_scale_init", 0.0),
        config["logit_scale_max"],
    )


def init_audio_from_tagger(model: BiEncoder, tagger_folder: str | Path) -> None:
    """Copy the tagger's CNN14 weights into the audio tower; the tag head is dropped (and logged)."""
    tagger, _ = load_audio_encoder(tagger_folder)
    state = {k: v for k, v in tagger.state_dict().items() if not k.startswith("head.")}
    dropped = sorted(set(tagger.state_dict()) - set(state))
    load_strict(model.audio_encoder, state, f"{tagger_folder}/tagger.safetensors")
    log.info("audio tower initialised from %s (dropped the tag head: %s)", tagger_folder, ", ".join(dropped))


def save_blat(folder: str | Path, model: BiEncoder, state: dict, config: dict, tokenizer: Tokenizer, meta: dict):
    """Write the model folder's files into an existing `folder` (the caller makes it appear atomically)."""
    folder = Path(folder)
    text_folder = folder / TEXT_FOLDER
    text_folder.mkdir()
    model.text_encoder.model.config.save_pretrained(str(text_folder))
    tokenizer.save(text_folder)
    portable = {**config, "text": {**config["text"], "folder": TEXT_FOLDER, "pretrained": False}}
    save_model(folder / "blat", state, kind="biencoder", config=portable, meta=meta)


def inner_folder(folder: Path, name: object) -> str:
    """The sidecar's text folder `name` when it is a relative path inside the model folder: a folder shared
    through a remote must not load files from elsewhere on the machine (an absolute path, or `../`)."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\0" in name:
        raise CheckpointError(f"{folder}/blat.json: its text folder {name!r} must be a folder inside the model folder "
                              f"(e.g. {TEXT_FOLDER!r})")  # fmt: skip
    normal = os.path.normpath(name)
    if normal == ".." or normal.startswith(".." + os.sep):
        raise CheckpointError(f"{folder}/blat.json: its text folder {name!r} climbs out of the model folder; it must "
                              f"be a folder inside it (e.g. {TEXT_FOLDER!r})")  # fmt: skip
    return normal


def load_blat(folder: str | Path, device: torch.device | str = "cpu") -> tuple[BiEncoder, Tokenizer, dict]:
    """(model in eval mode, tokenizer, meta) from a model folder; every weight must match (strict)."""
    folder = Path(folder)
    state, config, meta = load_model(folder / "blat", kind="biencoder")
    text_folder = folder / inner_folder(folder, config["text"]["folder"])
    if not (text_folder / "config.json").is_file():
        raise CheckpointError(f"{text_folder} has no config.json: the model folder is incomplete")
    try:  # transformers builds the text tower from it: its sizes are checked as the sidecar's are
        text_config = json.loads((text_folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{text_folder / 'config.json'} is not readable JSON ({error})") from None
    check_sizes(text_config, text_folder / "config.json", "config")
    config = {**config, "text": {**config["text"], "folder": str(text_folder), "pretrained": False}}
    model = build_biencoder(config)
    load_strict(model, state, str(folder / "blat.safetensors"))
    return model.to(device).eval(), Tokenizer(text_folder, config["text"]["max_tokens"]), meta
