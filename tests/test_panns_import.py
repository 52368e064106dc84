"""Official PANNs checkpoints import with exactly their key names; mismatches fail naming the key."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from blat_core.models.audio.cnn14 import Cnn14
from blat_core.models.audio.panns import import_panns, panns_key
from blat_core.models.checkpoints import CheckpointError

FRONT_END = {
    "spectrogram_extractor.stft.conv_real.weight": (513, 1, 1024),
    "spectrogram_extractor.stft.conv_imag.weight": (513, 1, 1024),
    "logmel_extractor.melW": (513, 64),
}


def _official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A full-size state dict under the official PANNs Cnn14 key names, random values."""
    torch.manual_seed(seed)
    ours = Cnn14(32000, num_classes=527).state_dict()
    state = {}
    for key, value in ours.items():
        if key.startswith("frontend."):
            continue
        state[panns_key(key)] = torch.randn_like(value.float()).to(value.dtype) if value.is_floating_point() else value
    state.update({k: torch.randn(shape) for k, shape in FRONT_END.items()})
    return state


BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
OFFICIAL_KEYS = (
    {f"bn0.{s}" for s in BN}
    | {f"conv_block{b}.conv{c}.weight" for b in range(1, 7) for c in (1, 2)}
    | {f"conv_block{b}.bn{c}.{s}" for b in range(1, 7) for c in (1, 2) for s in BN}
    | {"fc1.weight", "fc1.bias", "fc_audioset.weight", "fc_audioset.bias"}
    | set(FRONT_END)
)


def test_official_names_and_shapes_import(tmp_path, caplog):
    official = _official_state()
    assert set(official) == OFFICIAL_KEYS  # exactly the key set of Cnn14_mAP=0.431.pth
    assert "conv_block6.conv2.weight" in official and official["fc_audioset.weight"].shape == (527, 2048)
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": official, "iteration": 0}, path)
    model = Cnn14(32000, num_classes=527)
    with caplog.at_level(logging.INFO, logger="blat_core.models.audio.panns"):
        dropped = import_panns(path, model)
    assert dropped == sorted(FRONT_END)
    assert "3 dropped" in caplog.text and "logmel_extractor.melW" in caplog.text
    loaded = model.state_dict()
    torch.testing.assert_close(loaded["blocks.2.conv1.weight"], official["conv_block3.conv1.weight"])
    torch.testing.assert_close(loaded["head.bias"], official["fc_audioset.bias"])
    torch.testing.assert_close(loaded["bn0.running_var"], official["bn0.running_var"])


def test_headless_model_drops_the_audioset_head(tmp_path):
    path = tmp_path / "panns.pth"
    torch.save({"model": _official_state()}, path)
    dropped = import_panns(path, Cnn14(32000))
    assert "fc_audioset.weight" in dropped and "fc_audioset.bias" in dropped


def test_wrong_shape_fails_naming_the_key(tmp_path):
    official = _official_state()
    official["conv_block3.conv1.weight"] = torch.randn(256, 128, 5, 5)
    path = tmp_path / "bad.pth"
    torch.save({"model": official}, path)
    with pytest.raises(CheckpointError, match=r"'conv_block3\.conv1\.weight' has shape \(256, 128, 5, 5\)"):
        import_panns(path, Cnn14(32000, num_classes=527))


def test_missing_key_fails_naming_it(tmp_path):
    official = _official_state()
    del official["conv_block5.bn2.running_mean"]
    path = tmp_path / "missing.pth"
    torch.save({"model": official}, path)
    with pytest.raises(CheckpointError, match=r"key 'conv_block5\.bn2\.running_mean' is missing"):
        import_panns(path, Cnn14(32000, num_classes=527))


def test_not_a_panns_file(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="under 'model'"):
        import_panns(path, Cnn14(16000, channels=(8, 16, 32, 64, 128, 256)))


# ---------------------------------------------------------------- PANNs files at their edges
FRONT_END_16K = {
    "spectrogram_extractor.stft.conv_real.weight": (257, 1, 512),
    "spectrogram_extractor.stft.conv_imag.weight": (257, 1, 512),
    "logmel_extractor.melW": (257, 64),
}


def test_a_16khz_file_is_not_imported_into_the_32khz_model(tmp_path):
    """The front-end buffers of a 16 kHz PANNs file (n_fft 512: 257 rows) name its rate: importing it into the
    32 kHz CNN14 fails naming both rates and the params key to change; the 16 kHz model takes it."""
    official = _official_state()
    official.update({k: torch.randn(shape) for k, shape in FRONT_END_16K.items()})
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"model": official}, path)
    with pytest.raises(CheckpointError, match=r"front end is for 16000 Hz .* being built is for 32000 Hz: set "
                                              r"prepare\.sample_rate: 16000"):  # fmt: skip
        import_panns(path, Cnn14(32000, num_classes=527))
    assert import_panns(path, Cnn14(16000, num_classes=527)) == sorted(FRONT_END_16K)


def _as_numpy_1(path: Path) -> None:
    """Rewrite a torch file's pickle so numpy arrays name numpy 1's module (numpy.core), as PANNs files do."""
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for name, data in members.items():
            out.writestr(name, data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
                         if name.endswith("data.pkl") else data)  # fmt: skip


@pytest.mark.parametrize("numpy_1_names", [False, True])
def test_a_file_from_the_panns_training_script_imports(tmp_path, numpy_1_names):
    """PANNs' pytorch/main.py saves {'iteration', 'model', 'sampler': BalancedTrainSampler.state_dict()}: numpy
    index arrays per class, a queue and pointers. Such a file is read with weights_only=True (numpy's array
    types allow-listed, nothing else) and its weights import."""
    sampler = {"indexes_per_class": [np.where(np.arange(10) % 4 == k)[0] for k in range(5)],  # the last one empty
               "queue": [2, 0, 1], "pointers_of_classes": [0, 1, 0]}  # fmt: skip
    path = tmp_path / "160000_iterations.pth"
    torch.save({"iteration": 160000, "model": _official_state(), "sampler": sampler}, path)
    if numpy_1_names:
        _as_numpy_1(path)
    model = Cnn14(32000, num_classes=527)
    assert import_panns(path, model) == sorted(FRONT_END)


def test_a_refused_object_is_named_in_one_plain_line(tmp_path):
    """A file holding an object weights_only refuses (here an argparse Namespace, common in training scripts'
    saves) is refused with the object's name and no terminal colour codes."""
    import argparse

    path = tmp_path / "with_args.pth"
    torch.save({"model": _official_state(), "args": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(CheckpointError) as caught:
        import_panns(path, Cnn14(32000, num_classes=527))
    message = str(caught.value)
    assert "argparse.Namespace" in message and "\x1b[" not in message and "\n" not in message


def test_a_data_parallel_save_imports_and_says_so(tmp_path, caplog):
    """Keys saved from torch.nn.DataParallel carry `module.`: stripped and logged (it used to report a missing
    bn0.weight with no hint why)."""
    path = tmp_path / "dp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in _official_state().items()}}, path)
    with caplog.at_level(logging.INFO, logger="blat_core.models.audio.panns"):
        assert import_panns(path, Cnn14(32000, num_classes=527)) == sorted(FRONT_END)
    assert "DataParallel" in caplog.text
    mixed = {f"module.{k}" if k.startswith("bn0") else k: v for k, v in _official_state().items()}
    torch.save({"model": mixed}, path)
    with pytest.raises(CheckpointError, match="start with 'module.'"):
        import_panns(path, Cnn14(32000, num_classes=527))


def test_a_torchaudio_front_end_for_another_band_is_refused(tmp_path):
    """torchaudio buffers (the authors' BLAT layout) are compared with ours: a filter bank for 50-8000 Hz at
    32 kHz is another front end, refused instead of silently replaced."""
    import torchaudio

    official = {k: v for k, v in _official_state().items() if k not in FRONT_END}
    other = torchaudio.transforms.MelSpectrogram(sample_rate=32000, n_fft=1024, hop_length=320, f_min=50, f_max=8000,
                                                 n_mels=64, norm="slaney", mel_scale="slaney").state_dict()  # fmt: skip
    official.update({f"melspec_extractor.{k}": v for k, v in other.items()})
    path = tmp_path / "other_band.pth"
    torch.save({"model": official}, path)
    with pytest.raises(CheckpointError, match="is not CNN14's 32000 Hz front end"):
        import_panns(path, Cnn14(32000, num_classes=527))
