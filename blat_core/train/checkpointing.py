"""Fingerprinted, resumable training state in a git-ignored scratch folder.

Resume rule: a checkpoint is used only when what decides the result is unchanged: the declared params, the
input files' hashes, the environment (Python, torch and NumPy versions, the device type) and the training
math the stage imports (TRAINING_MATH: models, training recipes and loop, the data loading that makes
batches), fingerprinted by what its code computes (`code_digest`: the syntax tree without comments,
docstrings or layout), so editing a comment or a docstring there resumes too. Any other change to the code
the stage imports (a log line, the report, validation scoring, a crash fixed in evaluation) resumes with a
warning naming the changed files, so a fix at step 150K of 200K does not throw the run away. Code the stage
does not import cannot matter.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import platform
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blat_core.atomic import atomic_path
from blat_core.code_closure import ROOT, import_closure
from blat_core.models.checkpoints import file_digest

log = logging.getLogger(__name__)
# The code that changes what training computes: a change here restarts a resumable run (paths under ROOT).
TRAINING_MATH = ("blat_core/models/", "blat_core/train/", "blat_core/compute.py", "blat_core/distributed.py",
                 "blat_core/data/batching.py", "blat_core/data/pairs.py", "blat_core/data/prepared.py",
                 "blat_core/data/shards.py", "blat_core/data/features.py", "blat_core/data/labelled.py")  # fmt: skip


@dataclass(frozen=True)
class Fingerprint:
    """What a resume is checked against: `key` (params, inputs, environment, training-math code: must match)
    and the digests of the other code files the stage imports (may differ: resumed with a warning)."""

    key: str
    parts: dict = field(default_factory=dict)  # what went into `key`, to say what changed
    other_code: dict = field(default_factory=dict)


def environment() -> dict:
    """What a resumed run must share with the run that saved the checkpoint besides params, inputs and code."""
    import numpy
    import torch

    from blat_core.compute import pick_device

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "device": pick_device().type}  # fmt: skip


def fingerprint(params: Any, inputs: list[Path], code: list[Path], root: Path = ROOT) -> Fingerprint:
    """The fingerprint of a run: declared params, input files (manifests, small files), the environment, and the
    code `code` (entry files: the stage script or the task's module) reaches through imports."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    for path in sorted(inputs):
        digest.update(f"{path}:{file_digest(path)}".encode())
    files = dict(_code_digests(tuple(Path(c).resolve() for c in code), root))
    math = {name: d for name, d in files.items() if name.startswith(TRAINING_MATH)}
    parts = {"params_inputs": digest.hexdigest(), "environment": environment(), "math": math}
    key = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=16).hexdigest()
    return Fingerprint(key, parts, {name: d for name, d in files.items() if name not in math})


@functools.lru_cache(maxsize=32)
def _code_digests(code: tuple[Path, ...], root: Path) -> tuple[tuple[str, str], ...]:
    """(file, digest) of the code `code` reaches: training math by what it computes (`code_digest`), any other
    file by its bytes (so that any change there is named when resuming); once per process (evaluation tasks ask
    once per seed and fold)."""
    return tuple((path.as_posix(), code_digest(root / path) if path.as_posix().startswith(TRAINING_MATH)
                  else file_digest(root / path)) for path in sorted(import_closure(list(code), root)))  # fmt: skip


def code_digest(path: Path) -> str:
    """A digest of what a Python file computes: its syntax tree with every docstring removed, so comments,
    docstrings, blank lines and line breaks do not change it, while any change to a statement, expression,
    name or constant does. A file that does not parse is digested by its bytes."""
    source = path.read_bytes()
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return file_digest(path)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):  # fmt: skip
            node.body = body[1:] or [ast.Pass()]
    return hashlib.blake2b(ast.dump(tree).encode(), digest_size=16).hexdigest()


def _changed(before: dict, now: dict) -> list[str]:
    return sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))


def _why_not(saved: dict, now: Fingerprint) -> str:
    """What differs between a checkpoint's fingerprint parts and this run's, in words."""
    parts = saved.get("parts") if isinstance(saved.get("parts"), dict) else {}
    reasons = []
    if parts.get("params_inputs") != now.parts.get("params_inputs"):
        reasons.append("params or input files changed")
    environment_before = parts.get("environment") or {}
    moved = [f"{k} {environment_before.get(k)} -> {v}" for k, v in (now.parts.get("environment") or {}).items()
             if environment_before.get(k) != v]  # fmt: skip
    if moved:
        reasons.append("the environment changed (" + ", ".join(moved) + ")")
    math = _changed(parts.get("math") or {}, now.parts.get("math") or {})
    if math:
        reasons.append("training code changed: " + ", ".join(math[:8]) + (" …" if len(math) > 8 else ""))
    return "; ".join(reasons) or "it was saved by an older version"


class Checkpointer:
    """Training state in a git-ignored scratch folder, used again only by a run with the same fingerprint.

    The state is a folder `<scratch>/checkpoint/` (replaced atomically): `state.json` holds the
    fingerprint, the step and the Python/NumPy RNG states; `tensors.pt` holds the model, the optimizer,
    torch's RNG states and the caller's `extra` (tensors, numbers, lists, dicts), and is read with
    `weights_only=True` only after the fingerprint matched. A planted or foreign file can therefore
    never run code: nothing here is unpickled beyond tensors and plain containers.
    """

    def __init__(self, folder: Path, fingerprint_value: Fingerprint | str):
        if isinstance(fingerprint_value, str):  # a bare key (tests, callers with their own rule)
            fingerprint_value = Fingerprint(fingerprint_value, {"params_inputs": fingerprint_value})
        self.path, self.fingerprint = Path(folder) / "checkpoint", fingerprint_value

    def load(self) -> dict | None:
        meta_path, tensors_path = self.path / "state.json", self.path / "tensors.pt"
        if not meta_path.is_file() or not tensors_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning("ignoring %s: unreadable (%s)", meta_path, error)
            return None
        if not isinstance(meta, dict) or meta.get("fingerprint") != self.fingerprint.key:
            why = _why_not(meta if isinstance(meta, dict) else {}, self.fingerprint)
            log.warning("starting over, not resuming %s: %s", self.path, why)
            return None
        changed = _changed(meta.get("other_code") or {}, self.fingerprint.other_code)
        if changed:
            log.warning("resuming %s although %d code file(s) changed since it was saved (none of them training "
                        "math): %s", self.path, len(changed), ", ".join(changed))  # fmt: skip
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
        meta = {"fingerprint": self.fingerprint.key, "parts": self.fingerprint.parts,
                "other_code": self.fingerprint.other_code, "step": step, "rng": rng}  # fmt: skip
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
