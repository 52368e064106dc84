"""Official PANNs checkpoints import with exactly their key names; mismatches fail naming the key."""

from __future__ import annotations

import logging

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
