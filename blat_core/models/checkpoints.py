"""Self-describing model files: safetensors weights plus a JSON sidecar with the config to rebuild them.

model.safetensors + model.json  {"kind": ..., "config": {...}, "meta": {...}}
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from blat_core.atomic import atomic_path


def file_digest(path: str | Path, algorithm: str = "blake2b") -> str:
    """Hex digest of a file's bytes (blake2b: 16 bytes; any other hashlib name, e.g. "sha256", in full)."""
    digest = hashlib.blake2b(digest_size=16) if algorithm == "blake2b" else hashlib.new(algorithm)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointError(RuntimeError):
    """A checkpoint is missing, of another kind, or does not match the model it is loaded into."""


def _numpy_globals() -> list:
    """numpy's array and scalar reconstructors and numeric dtype classes, under numpy 2's and numpy 1's names:
    what a checkpoint holding plain numpy arrays needs (PANNs' training script saves its sampler state, numpy
    index arrays, beside the weights). Allow-listed for `weights_only=True`, which still refuses any other
    global: no code can run."""
    import numpy
    from numpy._core import multiarray

    names = [(multiarray._reconstruct, "numpy.core.multiarray._reconstruct"), multiarray._reconstruct,
             (multiarray.scalar, "numpy.core.multiarray.scalar"), multiarray.scalar,
             numpy.ndarray, numpy.dtype, bytes]  # bytes(): an empty array's data in pickle protocol 2  # fmt: skip
    for name in dir(numpy.dtypes):
        kind = getattr(numpy.dtypes, name)
        if isinstance(kind, type) and name.endswith("DType") and not name.startswith(("Object", "Void")):
            names.append(kind)
    return names


def load_torch_file(path: Path, what: str) -> object:
    """A `.pth` file someone else wrote, read with `weights_only=True` (tensors, plain containers and numpy
    arrays, never code); an empty, truncated or non-PyTorch file is a `CheckpointError` naming it and why."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # EOFError, UnpicklingError, RuntimeError (not a zip), ...
        raise CheckpointError(f"{path} is not a readable PyTorch {what} checkpoint ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    """torch's error in one line: its colour codes stripped, the refused global (if any) kept."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    refused = re.search(r"(Unsupported global: GLOBAL \S+|Can only build [^\n]+)", text)
    if refused:
        return (f"it holds an object weights_only loading refuses: {refused.group(1)}; a checkpoint of tensors, "
                "containers and numpy arrays loads, anything else is not read because it could run code")  # fmt: skip
    first = text.splitlines()[0] if text else type(error).__name__
    return f"{type(error).__name__}: {first[:200]}"


def save_model(path: str | Path, state: dict[str, torch.Tensor], kind: str, config: dict, meta: dict | None = None):
    """Write `<path>.safetensors` and `<path>.json` atomically."""
    path = Path(path)
    with atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp))
    sidecar = {"kind": kind, "config": config, "meta": meta or {}}
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")


def read_sidecar(path: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, meta) from the JSON sidecar of a model saved by `save_model`, without its weights; checks the kind."""
    path = Path(path)
    sidecar_path, weights_path = path.with_suffix(".json"), path.with_suffix(".safetensors")
    for required in (sidecar_path, weights_path):
        if not required.is_file():
            raise CheckpointError(f"{required} not found (a model is a .safetensors file plus a .json sidecar)")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, not UTF-8
        raise CheckpointError(f"{sidecar_path} is not a readable JSON sidecar ({error})") from None
    if not isinstance(sidecar, dict):
        raise CheckpointError(f"{sidecar_path} is not a model sidecar (a JSON object with kind, config and meta)")
    if sidecar.get("kind") != kind:
        raise CheckpointError(f"{sidecar_path} holds a {sidecar.get('kind')!r} model, expected {kind!r}")
    config, meta = sidecar.get("config"), sidecar.get("meta", {})
    if not isinstance(config, dict) or not isinstance(meta, dict):
        raise CheckpointError(f"{sidecar_path}: its config and meta must be JSON objects")
    check_sizes(config, sidecar_path, "config")
    return config, meta


MAX_CONFIG_INT = 1 << 20  # no width, count, length or rate of a model we build is larger (vocabularies: ~30k)


def check_sizes(value: Any, path: str | Path, key: str) -> None:
    """Raise CheckpointError naming the first whole number in a model config (nested dicts and lists, key path
    `key`) outside 0..MAX_CONFIG_INT: a damaged or forged config would otherwise ask torch for terabytes or for
    a negative dimension, deep inside a model's constructor."""
    if isinstance(value, dict):
        for name, inner in value.items():
            check_sizes(inner, path, f"{key}.{name}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            check_sizes(inner, path, f"{key}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_CONFIG_INT:
        raise CheckpointError(f"{path}: {key} is {value}, not a size a model can have (0 to {MAX_CONFIG_INT:,}): "
                              "the file is damaged or was not written by this pipeline; export it again")  # fmt: skip


def load_model(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(weights, config, meta) of a model saved by `save_model`; checks the kind."""
    config, meta = read_sidecar(path, kind)
    weights = Path(path).with_suffix(".safetensors")
    try:
        return load_file(str(weights)), config, meta
    except Exception as error:  # SafetensorError, OSError: a truncated or foreign file
        raise CheckpointError(f"{weights} is not a readable safetensors file ({error})") from None


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `module`, failing with the first missing, unexpected or wrong-shaped key named."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: missing keys {missing[:5]}{'…' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(value.shape)}, the model expects {tuple(expected[key].shape)}"
            )
        if value.dtype != expected[key].dtype:  # load_state_dict would cast an int8 or float64 tensor silently
            raise CheckpointError(
                f"{source}: key {key!r} is {str(value.dtype).removeprefix('torch.')}, the model expects "
                f"{str(expected[key].dtype).removeprefix('torch.')}: convert the file's weights (or export it again)"
            )
    module.load_state_dict(state, strict=True)
