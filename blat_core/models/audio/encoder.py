"""The `audio_encoder` params section and the one function that builds the configured tower."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blat_core.models.registry import AUDIO_ENCODERS
from blat_core.params import ParamsError

SAMPLE_RATES = (16000, 32000)


@dataclass
class AudioEncoderParams:
    """The `audio_encoder` section: which tower and how wide. Its sample rate is the prepared data's
    (`prepare.sample_rate`, declared once)."""

    name: str
    channels: list[int]

    def config(self, sample_rate: int, num_classes: int = 0) -> dict:
        """The builder's keyword arguments (stored in checkpoint sidecars) for audio at `sample_rate`."""
        if sample_rate not in SAMPLE_RATES:
            raise ParamsError(f"prepare.sample_rate={sample_rate}: the audio towers' front ends are defined at "
                              f"{' and '.join(map(str, SAMPLE_RATES))} Hz")  # fmt: skip
        return {
            "name": self.name,
            "sample_rate": sample_rate,
            "channels": list(self.channels),
            "num_classes": num_classes,
        }


def build_audio_encoder(config: dict):
    """Build from a config dict (as `AudioEncoderParams.config` or a sidecar holds it)."""
    config = dict(config)
    return AUDIO_ENCODERS.build(config.pop("name"), **config)


def load_audio_encoder(folder: str | Path, name: str = "tagger"):
    """(model, meta) from a model folder written by the tagger stage, in eval mode on the CPU."""
    from blat_core.models.checkpoints import load_model, load_strict

    path = Path(folder) / name
    state, config, meta = load_model(path, kind="audio_encoder")
    model = build_audio_encoder(config)
    load_strict(model, state, str(path))
    return model.eval(), meta
