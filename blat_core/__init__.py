"""BLAT reproduction library: data, models, metrics.

    import blat_core
    model = blat_core.load_model("exported/blat_stage2")   # `blat export` folder or data/models/blat_*
    similarity = model.embed_audio(["dog.wav"]) @ model.embed_text(["a dog barks"]).T
"""

import importlib

from blat_core import cpu_runtime as _cpu_runtime

_cpu_runtime.check_environment()  # a removed $BLAT_CPU_RUNTIME mode stops here, before anything runs


def __getattr__(name: str):
    # `blat_core.load_model` is imported on first use, by name: no stage calls it, so the stages' code deps
    # (their import closures, scripts/code_deps.py) leave out the export code and its layer (models).
    if name in ("load_model", "BlatModel"):
        return getattr(importlib.import_module("blat_core.models.portable"), name)
    raise AttributeError(f"module 'blat_core' has no attribute {name!r}")
