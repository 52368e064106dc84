"""What every training stage shares: device and precision, schedules, deterministic batch plans,
fingerprinted resumable checkpoints, DVCLive curves, and one loop that ties them together.

Resume rule: a checkpoint in the scratch folder is used only when its fingerprint (declared params,
input hashes, code) matches the current run; otherwise it is ignored and training starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blat_core.atomic import atomic_path
from blat_core.checkpoints import file_digest

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- device and precision
def pick_device() -> torch.device:
    """$BLAT_DEVICE if set, else CUDA when present, else CPU (a runtime choice, not a tracked param)."""
    return torch.device(os.environ.get("BLAT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU; full fp32 on CPU (where determinism matters more than speed)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compile_enabled(device: torch.device) -> bool:
    """$BLAT_COMPILE=1 on a GPU: a runtime choice (results are unchanged), not a tracked param."""
    return os.environ.get("BLAT_COMPILE") == "1" and device.type == "cuda"


def maybe_compile(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """torch.compile when `compile_enabled`."""
    return torch.compile(module) if compile_enabled(device) else module


def adam(parameters: Iterable, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam (decoupled weight decay when > 0), fused on GPU."""
    fused = device.type == "cuda"
    if weight_decay > 0:
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    return torch.optim.Adam(parameters, lr=lr, fused=fused)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warmup to 1, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def deterministic_cpu() -> None:
    """Same seed, same result on CPU: deterministic kernels, one intra-op order."""
    torch.use_deterministic_algorithms(True, warn_only=True)


# ---------------------------------------------------------------- batch plans
def epoch_batches(seed: int, step: int, num_items: int, batch_size: int) -> np.ndarray:
    """Indices of batch `step`: a fresh permutation per epoch (seed, epoch), last partial batch dropped."""
    per_epoch = max(1, num_items // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_items)
    return order[position * batch_size : (position + 1) * batch_size]


def balanced_batches(seed: int, step: int, class_members: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Indices of batch `step` drawn class-first (uniform over classes with members), then clip."""
    rng = np.random.default_rng([seed, step, 1])
    classes = [c for c in class_members if len(c)]
    picks = rng.integers(0, len(classes), batch_size)
    return np.array([classes[c][rng.integers(0, len(classes[c]))] for c in picks])


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps [start, total), the list of (item index, (seed, step, position)) of each batch;
    the second element seeds any per-item randomness (a crop), so a resumed run draws the same."""

    def __init__(self, plan: Callable[[int], np.ndarray], seed: int, start: int, total: int):
        self.plan, self.seed, self.start, self.total = plan, seed, start, total

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.total):
            indices = self.plan(step)
            yield [(int(i), (self.seed, step, k)) for k, i in enumerate(indices)]

    def __len__(self) -> int:
        return self.total - self.start


# ---------------------------------------------------------------- fingerprints and checkpoints
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


# ---------------------------------------------------------------- curves
class Curves:
    """DVCLive curves logged every few steps; on resume, points past the resume step are dropped."""

    def __init__(self, folder: Path, resume_step: int):
        from dvclive import Live

        self.folder = Path(folder)
        self._truncate(resume_step)
        self.live = Live(dir=str(self.folder), dvcyaml=False, save_dvc_exp=False, resume=resume_step > 0)

    def _truncate(self, step: int) -> None:
        if step == 0:
            shutil.rmtree(self.folder, ignore_errors=True)  # a fresh run starts fresh curves
            return
        for tsv in (self.folder / "plots" / "metrics").rglob("*.tsv"):
            header, *rows = tsv.read_text().splitlines()
            column = header.split("\t").index("step")
            kept = [row for row in rows if int(row.split("\t")[column]) <= step]
            tsv.write_text("\n".join([header, *kept]) + "\n")

    def log(self, step: int, values: dict[str, float]) -> None:
        self.live.step = step
        for name, value in values.items():
            self.live.log_metric(name, float(value))

    def close(self) -> None:
        self.live.end()


# ---------------------------------------------------------------- the loop
def train_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable],
    step_fn: Callable[[Any], dict[str, float | torch.Tensor]],
    total_steps: int,
    lr_multiplier: Callable[[int], float],
    checkpointer: Checkpointer,
    curves_folder: Path | None,
    log_every: int,
    checkpoint_every: int,
    stop_after: int | None = None,
    after_step: Callable[[int, Curves | None], None] | None = None,
    extra_state: dict | None = None,
    is_main: bool = True,
) -> int:
    """Run steps [resume, total): each step sets the LR, calls `step_fn(batch)`, logs and checkpoints.

    `batches(start)` yields the batches of steps start, start+1, ...; returns the step reached
    (`total_steps`, or `stop_after` when given: a test's stand-in for a killed run).
    `after_step(steps_done, curves)` runs after each step (validation, say); `extra_state` is saved in
    every checkpoint and updated in place from the checkpoint on resume. Only the main process
    (`is_main`) writes curves and checkpoints; every process resumes from the same file.
    """
    start, saved = resume(checkpointer, model, optimizer, total_steps)
    if extra_state is not None:
        extra_state.update(saved)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])  # restored from the checkpoint when resuming
    curves = Curves(curves_folder, start) if curves_folder is not None and is_main else None
    model.train()
    window, seen, waited, tick = [], 0, 0.0, time.perf_counter()
    iterator = iter(batches(start))
    for step in range(start, total_steps):
        fetch = time.perf_counter()
        batch = next(iterator)
        waited += time.perf_counter() - fetch  # time the step waited for data
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr_multiplier(step)
        values = step_fn(batch)
        window.append(values)
        seen += values.get("batch_size", 0)
        if (step + 1) % log_every == 0 or step + 1 == total_steps:
            # Step values may be 0-d tensors still on the device: read once per window, not once per step.
            means = {k: float(np.mean([float(v[k]) for v in window])) for k in window[0] if k != "batch_size"}
            elapsed = time.perf_counter() - tick
            if is_main:
                log.info(
                    "step %d/%d %s lr %.3g %.1f samples/s (%.0f%% waiting for data)",
                    step + 1,
                    total_steps,
                    " ".join(f"{k} {v:.4f}" for k, v in means.items()),
                    optimizer.param_groups[0]["lr"],
                    seen / max(elapsed, 1e-9),
                    100 * waited / max(elapsed, 1e-9),
                )
            if curves:
                curves.log(step + 1, {**means, "lr": optimizer.param_groups[0]["lr"]})
            window, seen, waited, tick = [], 0, 0.0, time.perf_counter()
        if after_step is not None:
            after_step(step + 1, curves)
        if (step + 1) % checkpoint_every == 0 and step + 1 < total_steps and is_main:
            checkpointer.save(step + 1, model, optimizer, extra_state or {})
        if stop_after is not None and step + 1 >= stop_after:
            return step + 1
    if curves:
        curves.close()
    return total_steps
