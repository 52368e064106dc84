"""Import the authors' released BLAT checkpoint (`blat_cnn14_bertm.pth`) into our model-folder format.

The file is a dict with the weights under "state_dict" (github.com/wsntxxn/BLAT `inference.py` loads it
strictly into their `AudioTextClip`; tests/fixtures/authors_blat_state_dict.json is that model's key list,
recorded from their code by scripts/record_authors_blat_keys.py):
    audio_encoder.*        their CNN14: torchaudio front end (melspec_extractor.spectrogram.window (1024),
                           melspec_extractor.mel_scale.fb (513, 64)), then PANNs names (bn0, conv_block1..6, fc1)
    text_encoder.model.*   a transformers BertModel (BERT-medium), pooler included; files saved with
                           transformers < 4.31 also hold embeddings.position_ids
    audio_proj.*, text_proj.*, logit_scale
Dropped, each named in a log line and in the model's meta: the audio front-end buffers (checked: they give
the sample rate, 513 rows = 32 kHz, 257 = 16 kHz, and must equal our front end's), the AudioSet head if
present, BERT's `position_ids` / `token_type_ids` buffers and its unused pooler (the text embedding is
[CLS] of the last hidden state). Everything else loads strictly: a missing, unexpected or wrong-shaped key
fails naming the key and what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from blat_core.atomic import atomic_path
from blat_core.models.audio.panns import front_end_rate, load_panns_weights, strip_data_parallel
from blat_core.models.blat_model import build_biencoder, save_blat
from blat_core.models.checkpoints import CheckpointError, file_digest, load_strict, load_torch_file
from blat_core.models.text.encoder import Tokenizer

log = logging.getLogger(__name__)

PREFIXES = ("audio_encoder.", "text_encoder.model.", "audio_proj.", "text_proj.")
TEXT_DROPPED = ("embeddings.position_ids", "embeddings.token_type_ids", "pooler.dense.weight", "pooler.dense.bias")


def read_official(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of an official BLAT checkpoint file (loaded with weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"BLAT checkpoint {path} not found (the authors' file is blat_cnn14_bertm.pth)")
    payload = load_torch_file(path, "BLAT")
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path}: expected a dict with the weights under 'state_dict' (the authors' format)")
    weights = strip_data_parallel(payload["state_dict"], str(path))
    unknown = sorted(k for k in weights if k != "logit_scale" and not k.startswith(PREFIXES))
    if unknown:
        raise CheckpointError(f"{path}: unexpected key {unknown[0]!r} ({len(unknown)} keys outside {PREFIXES} and "
                              "logit_scale): not the authors' AudioTextClip; a model with other parts cannot be "
                              "imported as BLAT")  # fmt: skip
    if "logit_scale" not in weights:
        raise CheckpointError(f"{path}: key 'logit_scale' is missing")
    return weights


def official_config(weights: dict[str, torch.Tensor], text_folder: str | Path, sample_rate: int | None,
                    max_tokens: int, logit_scale_max: float | None) -> dict:  # fmt: skip
    """Our bi-encoder config for these weights: CNN14 widths and the shared dimension from the shapes;
    the sample rate from the mel matrix when the file has one, else `sample_rate`."""
    channels = []
    for block in range(1, 7):
        key = f"audio_encoder.conv_block{block}.conv1.weight"
        if key not in weights:
            raise CheckpointError(f"key {key!r} is missing: not a CNN14 audio tower")
        channels.append(int(weights[key].shape[0]))
    audio = {k[len("audio_encoder.") :]: v for k, v in weights.items() if k.startswith("audio_encoder.")}
    rate = front_end_rate(audio, "the checkpoint", prefix="audio_encoder.")
    if rate is not None:
        if sample_rate is not None and sample_rate != rate:
            raise CheckpointError(f"the checkpoint's front end is for {rate} Hz, not the {sample_rate} Hz asked for "
                                  "(--sample-rate): leave --sample-rate out, the file says it")  # fmt: skip
        sample_rate = rate
    if sample_rate is None:
        raise CheckpointError("the checkpoint has no front-end buffers to tell its sample rate: give it "
                              "(--sample-rate 32000 for the authors' CNN14, 16000 for the 16 kHz variant)")  # fmt: skip
    if "audio_proj.weight" not in weights:
        raise CheckpointError("key 'audio_proj.weight' is missing")
    return {
        "audio": {"name": "cnn14", "sample_rate": sample_rate, "channels": channels, "num_classes": 0},
        "text": {"name": "bert", "folder": str(text_folder), "pretrained": False, "max_tokens": max_tokens},
        "embed_dim": int(weights["audio_proj.weight"].shape[0]),
        "logit_scale_init": float(weights["logit_scale"]),
        "logit_scale_max": logit_scale_max,
        "sample_rate": sample_rate,
    }


@dataclass
class ExternalModel:
    """One `evaluate.external_models.<name>` entry: a checkpoint in the authors' format to score here."""

    checkpoint: str  # e.g. /models/blat_cnn14_bertm.pth (weights under "state_dict")
    text_folder: str  # a local BERT-medium folder (config.json + tokenizer files; its weights are not used)
    sample_rate: int | None = None  # only for a file without front-end buffers (they imply it)
    max_tokens: int = 30
    logit_scale_max: float | None = None


def import_official_blat(
    checkpoint: str | Path,
    text_folder: str | Path,
    out: str | Path,
    sample_rate: int | None = None,
    max_tokens: int = 30,
    logit_scale_max: float | None = None,
) -> list[str]:
    """Convert the checkpoint into a model folder at `out` (loadable by `load_blat`); returns the dropped keys.

    `text_folder`: a local transformers folder with the BERT-medium config and tokenizer files (its
    weights are not used: every text weight comes from the checkpoint).
    """
    checkpoint, text_folder = Path(checkpoint), Path(text_folder)
    if not (text_folder / "config.json").is_file():
        raise CheckpointError(f"{text_folder} has no config.json: give a local BERT-medium folder (config + tokenizer)")
    weights = read_official(checkpoint)
    config = official_config(weights, text_folder, sample_rate, max_tokens, logit_scale_max)
    model = build_biencoder(config)
    audio = {k[len("audio_encoder.") :]: v for k, v in weights.items() if k.startswith("audio_encoder.")}
    dropped = load_panns_weights(audio, model.audio_encoder, str(checkpoint), prefix="audio_encoder.")
    rest = {}
    for key, value in weights.items():
        if key.startswith("audio_encoder."):
            continue
        if key.startswith("text_encoder.model.") and key[len("text_encoder.model.") :] in TEXT_DROPPED:
            dropped.append(key)
            continue
        rest[key] = value
    logit_scale = rest["logit_scale"]
    rest["logit_scale"] = logit_scale.reshape(()) if logit_scale.numel() == 1 else logit_scale
    ours = {k: v for k, v in model.state_dict().items() if k.startswith("audio_encoder.")}
    load_strict(model, {**ours, **rest}, str(checkpoint))
    text_dropped = [k for k in dropped if k.startswith("text_encoder.")]
    log.info("imported %s: %d tensors; dropped %s", checkpoint, len(weights) - len(dropped), ", ".join(text_dropped))
    meta = {"imported_from": checkpoint.name, "blake2b": file_digest(checkpoint), "dropped": dropped}
    with atomic_path(Path(out)) as tmp:
        tmp.mkdir()
        save_blat(tmp, model, model.state_dict(), config, Tokenizer(text_folder, max_tokens), meta)
    return dropped
