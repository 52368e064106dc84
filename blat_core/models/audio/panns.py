"""Import an official PANNs checkpoint (e.g. `Cnn14_mAP=0.431.pth`) into our CNN14 (SPEC §2).

Weights are under "model"; the front-end buffers (STFT kernels, mel matrix) are dropped because our
front-end recomputes them; everything else loads strictly, each key renamed to our module names.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from blat_core.models.audio.cnn14 import Cnn14
from blat_core.models.checkpoints import CheckpointError, load_strict, load_torch_file

log = logging.getLogger(__name__)

FRONT_END_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.")


def rename_panns_key(key: str) -> str:
    """PANNs name -> our name: conv_block3.bn1.weight -> blocks.2.bn1.weight, fc_audioset.* -> head.*."""
    match = re.fullmatch(r"conv_block([1-6])\.(.+)", key)
    if match:
        return f"blocks.{int(match.group(1)) - 1}.{match.group(2)}"
    if key.startswith("fc_audioset."):
        return "head." + key[len("fc_audioset.") :]
    return key


def panns_key(key: str) -> str:
    """Our name -> the PANNs name (inverse of `rename_panns_key`)."""
    match = re.fullmatch(r"blocks\.(\d)\.(.+)", key)
    if match:
        return f"conv_block{int(match.group(1)) + 1}.{match.group(2)}"
    return "fc_audioset." + key[len("head.") :] if key.startswith("head.") else key


def import_panns(path: str | Path, model: Cnn14) -> list[str]:
    """Load a PANNs checkpoint file into `model`; returns the dropped front-end keys (also logged)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"PANNs checkpoint {path} not found (set tagger.checkpoint to the .pth file)")
    payload = load_torch_file(path, "PANNs")
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path}: expected a dict with the weights under 'model' (the PANNs format)")
    return load_panns_weights(payload["model"], model, str(path))


def load_panns_weights(weights: dict[str, torch.Tensor], model: Cnn14, source: str, prefix: str = "") -> list[str]:
    """Load CNN14 weights named as in PANNs into `model`, strictly; the front-end buffers (and the AudioSet
    head when `model` has none) are dropped and returned. `prefix` only names keys in messages."""
    dropped = sorted(prefix + k for k in weights if k.startswith(FRONT_END_PREFIXES))
    expected = model.state_dict()
    for ours in expected:
        if not ours.startswith("frontend.") and panns_key(ours) not in weights:
            missing = prefix + panns_key(ours)
            raise CheckpointError(f"{source}: key {missing!r} is missing (our CNN14 needs it as {ours!r})")
    for key, value in weights.items():
        ours = rename_panns_key(key)
        if key.startswith(FRONT_END_PREFIXES) or (ours.startswith("head.") and model.head is None):
            continue
        if ours not in expected:
            raise CheckpointError(f"{source}: unexpected key {prefix + key!r} (not part of CNN14)")
        if tuple(value.shape) != tuple(expected[ours].shape):
            raise CheckpointError(
                f"{source}: key {prefix + key!r} has shape {tuple(value.shape)}, our CNN14 expects "
                f"{tuple(expected[ours].shape)} (check audio_encoder.channels and the class count)"
            )
    state = {rename_panns_key(k): v for k, v in weights.items() if not k.startswith(FRONT_END_PREFIXES)}
    if model.head is None:
        head_keys = [k for k in state if k.startswith("head.")]
        dropped += [f"{prefix}fc_audioset.{k[5:]}" for k in head_keys]
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    # Our front-end has no trainable state; only its buffers are absent from the file.
    own_buffers = {k for k, _ in model.named_buffers() if k.startswith("frontend.")}
    state.update({k: v for k, v in model.state_dict().items() if k in own_buffers})
    load_strict(model, state, source)
    log.info(
        "imported %s: %d tensors loaded, %d dropped: %s",
        source,
        len(state) - len(own_buffers),
        len(dropped),
        ", ".join(dropped),
    )
    return dropped
