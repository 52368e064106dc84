"""Fingerprinted, resumable training state in a git-ignored scratch folder.

Resume rule: a checkpoint is used only when its fingerprint (declared params, input hashes, code)
matches the current run; otherwise it is ignored and training starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blat_core.atomic import atomic_path
from blat_core.models.checkpoints import file_digest

log = logging.getLogger(__name__)


def fingerprint(params: Any, inputs: list[Path], code_roots: list[Path]) -> str:
    """Digest of the declared params, the input files (manifests, small files) and every code file."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    for path in sorted(inputs):
        digest.update(f"{path}:{file_digest(path)}".encode())
    for root in code_roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            digest.update(f"{path.name}:{file_digest(path)}".encode())
    return digest.hexdigest()


class Checkpointer:
    """Training state in a git-ignored scratch folder, used again only by a run with the same fingerprint.

    The state is a folder `<scratch>/checkpoint/` (replaced atomically): `state.json` holds the
    fingerprint, the step and the Python/NumPy RNG states; `tensors.pt` holds the model, the optimizer,
    torch's RNG states and the caller's `extra` (tensors, numbers, lists, dicts), and is read with
    `weights_only=True` only after the fingerprint matched. A planted or foreign file can therefore
    never run code: nothing here is unpickled beyond tensors and plain containers.
    """

    def __init__(self, folder: Path, fingerprint_value: str):
        self.path, self.fingerprint = Path(folder) / "checkpoint", fingerprint_value

    def load(self) -> dict | None:
        meta_path, tensors_path = self.path / "state.json", self.path / "tensors.pt"
        if not meta_path.is_file() or not tensors_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            matches = isinstance(meta, dict) and meta.get("fingerprint") == self.fingerprint
        except (OSError, ValueError) as error:
            log.warning("ignoring %s: unreadable (%s)", meta_path, error)
            return None
        if not matches:
            log.warning("ignoring %s: it belongs to another configuration (params, inputs or code changed)", self.path)
            return None
        try:
            tensors = torch.load(tensors_path, map_location="cpu", weights_only=True)
        except Exception as error:  # UnpicklingError for anything but tensors and plain containers
            log.warning("ignoring %s: not a plain tensor checkpoint (%s)", tensors_path, str(error).splitlines()[0])
            return None
        try:
            rng = {"torch": tensors["torch_rng"], "numpy": meta["rng"]["numpy"], "python": meta["rng"]["python"]}
            if "cuda_rng" in tensors:
                rng["cuda"] = tensors["cuda_rng"]
            return {"step": int(meta["step"]), "model": tensors["model"], "optimizer": tensors["optimizer"],
                    "extra": tensors["extra"], "rng": rng}  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            log.warning("ignoring %s: incomplete checkpoint (%r missing or malformed)", self.path, error)
            return None

    def save(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, extra: dict) -> None:
        rng = _rng_state()
        tensors = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "extra": extra,
                   "torch_rng": rng.pop("torch")}  # fmt: skip
        if "cuda" in rng:
            tensors["cuda_rng"] = rng.pop("cuda")
        meta = {"fingerprint": self.fingerprint, "step": step, "rng": rng}
        with atomic_path(self.path) as tmp:
            tmp.mkdir()
            torch.save(tensors, tmp / "tensors.pt")
            (tmp / "state.json").write_text(json.dumps(meta))

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def resume(
    checkpointer: Checkpointer, model: torch.nn.Module, optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[int, dict]:
    """Restore model, optimizer and RNGs from a matching checkpoint: (step reached, its extra dict);
    (0, {}) when there is none."""
    state = checkpointer.load()
    if state is None:
        return 0, {}
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    _restore_rng(state["rng"])
    log.info("resuming from step %d of %d (%s)", state["step"], total_steps, checkpointer.path)
    return state["step"], state["extra"]


def _rng_state() -> dict:
    """torch's states as tensors; NumPy's and Python's as JSON-able lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
