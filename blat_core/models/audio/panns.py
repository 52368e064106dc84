"""Import an official PANNs checkpoint (e.g. `Cnn14_mAP=0.431.pth`) into our CNN14 (SPEC §2).

Weights are under "model" (PANNs' training script also stores "iteration" and its sampler's numpy state:
read, not used); a DataParallel save's `module.` prefix is stripped and reported. The front-end buffers
(torchlibrosa's STFT kernels and mel matrix in PANNs files, torchaudio's window and filter bank in the
authors' BLAT files) are dropped because our front end recomputes them, after checking what they say:
the sample rate they were made for (513 rows: n_fft 1024, 32 kHz; 257: 16 kHz) must be the model's, their
shapes must agree with each other, and torchaudio's buffers must equal ours for that rate. Everything else
loads strictly, each key renamed to our module names.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from blat_core.models.audio.cnn14 import Cnn14
from blat_core.models.audio.frontend import FrontEndConfig, LogMel
from blat_core.models.checkpoints import CheckpointError, load_strict, load_torch_file

log = logging.getLogger(__name__)

FRONT_END_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.", "melspec_extractor.")
ROWS_TO_RATE = {513: 32000, 257: 16000}  # STFT bins = n_fft // 2 + 1: n_fft 1024 at 32 kHz, 512 at 16 kHz
MEL_MATRICES = ("logmel_extractor.melW", "melspec_extractor.mel_scale.fb")  # PANNs (torchlibrosa), BLAT (torchaudio)


def front_end_shapes(rate: int) -> dict[str, tuple[int, ...]]:
    """The shape of each front-end buffer a PANNs or BLAT file made for `rate` holds."""
    config = FrontEndConfig.for_rate(rate)
    bins = config.n_fft // 2 + 1
    return {
        "spectrogram_extractor.stft.conv_real.weight": (bins, 1, config.n_fft),
        "spectrogram_extractor.stft.conv_imag.weight": (bins, 1, config.n_fft),
        "logmel_extractor.melW": (bins, config.n_mels),
        "melspec_extractor.spectrogram.window": (config.n_fft,),
        "melspec_extractor.mel_scale.fb": (bins, config.n_mels),
    }


def front_end_rate(weights: dict[str, torch.Tensor], source: str, prefix: str = "") -> int | None:
    """The sample rate the file's front-end buffers were made for (None when it has none), after checking
    that every buffer is a known one with the shape that rate implies, and that torchaudio's buffers (the
    authors' BLAT files) equal our front end's for that rate."""
    buffers = {k: v for k, v in weights.items() if k.startswith(FRONT_END_PREFIXES)}
    if not buffers:
        return None
    mel = next((buffers[k] for k in MEL_MATRICES if k in buffers), None)
    if mel is None or mel.ndim != 2 or int(mel.shape[0]) not in ROWS_TO_RATE:
        found = {prefix + k: tuple(v.shape) for k, v in buffers.items()}
        raise CheckpointError(f"{source}: its front-end buffers {found} are not CNN14's at 16 or 32 kHz (a mel matrix "
                              "of 257 or 513 rows by 64)")  # fmt: skip
    rate = ROWS_TO_RATE[int(mel.shape[0])]
    shapes = front_end_shapes(rate)
    for key, value in buffers.items():
        if key not in shapes:
            raise CheckpointError(f"{source}: unknown front-end key {prefix + key!r}: CNN14 files hold "
                                  f"{', '.join(prefix + k for k in shapes)}; is this another front end?")  # fmt: skip
        if tuple(value.shape) != shapes[key]:
            raise CheckpointError(f"{source}: key {prefix + key!r} has shape {tuple(value.shape)}; with a "
                                  f"{mel.shape[0]}-row mel matrix ({rate} Hz) it would be {shapes[key]}")  # fmt: skip
    ours = LogMel(FrontEndConfig.for_rate(rate))
    for key, mine in (("melspec_extractor.spectrogram.window", ours.spectrogram.window),
                      ("melspec_extractor.mel_scale.fb", ours.mel.fb)):  # fmt: skip
        if key in buffers and not torch.allclose(buffers[key].float(), mine, atol=1e-6):
            raise CheckpointError(f"{source}: {prefix + key!r} is not CNN14's {rate} Hz front end (Hann window, "
                                  f"64 Slaney mel bands 50-{FrontEndConfig.for_rate(rate).f_max:g} Hz): "
                                  "another front end, which this import would silently replace")  # fmt: skip
    return rate


def check_front_end(weights: dict[str, torch.Tensor], model: Cnn14, source: str, prefix: str = "") -> None:
    """The file's front end, if it has one, must be for the rate of the model being built."""
    rate = front_end_rate(weights, source, prefix)
    if rate is not None and rate != model.sample_rate:
        raise CheckpointError(
            f"{source}: its front end is for {rate} Hz audio (a {front_end_shapes(rate)['logmel_extractor.melW'][0]}"
            f"-row mel matrix), the CNN14 being built is for {model.sample_rate} Hz: set prepare.sample_rate: "
            f"{rate} to build the {rate // 1000} kHz variant, or use a {model.sample_rate // 1000} kHz checkpoint"
        )


def strip_data_parallel(weights: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """A `torch.nn.DataParallel` save names every key `module.<key>`: strip the prefix (and say so)."""
    wrapped = [k for k in weights if k.startswith("module.")]
    if not wrapped:
        return weights
    if len(wrapped) != len(weights):
        raise CheckpointError(f"{source}: {len(wrapped)} of {len(weights)} keys start with 'module.' (e.g. "
                              f"{wrapped[0]!r}): a mix of a DataParallel save and a plain one")  # fmt: skip
    log.info("%s: a DataParallel save (every key starts with 'module.'): the prefix is stripped", source)
    return {k[len("module.") :]: v for k, v in weights.items()}


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
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"{path}: expected a dict with the weights under 'model' (the PANNs format)")
    return load_panns_weights(strip_data_parallel(payload["model"], str(path)), model, str(path))


def load_panns_weights(weights: dict[str, torch.Tensor], model: Cnn14, source: str, prefix: str = "") -> list[str]:
    """Load CNN14 weights named as in PANNs into `model`, strictly; the front-end buffers (and the AudioSet
    head when `model` has none) are dropped and returned. `prefix` only names keys in messages."""
    check_front_end(weights, model, source, prefix)
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
