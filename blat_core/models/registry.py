"""Name -> builder registries for the swappable parts (audio encoders, text encoders)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Registry:
    """A small named registry; an unknown name raises ValueError listing the valid ones."""

    def __init__(self, kind: str):
        self.kind, self._builders = kind, {}

    def register(self, name: str) -> Callable:
        def decorate(builder: Callable) -> Callable:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return decorate

    def build(self, name: str, **kwargs: Any) -> Any:
        if name not in self._builders:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._builders))}")
        return self._builders[name](**kwargs)

    def names(self) -> list[str]:
        return sorted(self._builders)


AUDIO_ENCODERS = Registry("audio encoder")
TEXT_ENCODERS = Registry("text encoder")  # builders live in blat_core.models.text.encoder


@AUDIO_ENCODERS.register("cnn14")
def _cnn14(sample_rate: int, channels: list[int], num_classes: int = 0):
    from blat_core.models.audio.cnn14 import Cnn14

    return Cnn14(sample_rate=sample_rate, channels=tuple(channels), num_classes=num_classes)
