"""The one training loop: the tagger, the captioner, both pre-training stages and both fine-tunes run
through `train_steps`, each recipe supplying its batches, its step and its evaluation.

The loop owns what they share: resuming from a fingerprinted checkpoint, the LR schedule (LambdaLR over
a pure multiplier), logging one line per window, DVCLive curves, periodic evaluation and checkpoints.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blat_core.train.checkpointing import Checkpointer, resume

log = logging.getLogger(__name__)


def adam(parameters: Iterable, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam (decoupled weight decay when > 0), fused on GPU."""
    fused = device.type == "cuda"
    if weight_decay > 0:
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=fused)
    return torch.optim.Adam(parameters, lr=lr, fused=fused)


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
@dataclass(frozen=True)
class LoopSchedule:
    """When the loop does what: `total_steps` steps at LR `base × lr_multiplier(step)`, a log line and
    curve points every `log_every` steps, `evaluate` every `evaluate_every` steps (and after the last),
    a resume checkpoint every `checkpoint_every` steps."""

    total_steps: int
    lr_multiplier: Callable[[int], float]
    log_every: int
    checkpoint_every: int
    evaluate_every: int | None = None


StepFn = Callable[[Any], dict[str, float | torch.Tensor]]


def train_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable],
    step_fn: StepFn,
    schedule: LoopSchedule,
    checkpointer: Checkpointer,
    curves_folder: Path | None = None,
    *,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    curve_values: Callable[[int], dict[str, float]] | None = None,
    extra_state: dict | None = None,
    is_main: bool = True,
    stop_after: int | None = None,
    history: list | None = None,
) -> int:
    """Run steps [resume, total) and return the step reached (`total_steps`, or `stop_after`: a test's
    stand-in for a killed run).

    `batches(start)` yields the batches of steps start, start+1, ...; `step_fn(batch)` does one update
    and returns its values (tensors are read once per log window, not once per step). `evaluate(steps)`
    runs on the main process at its cadence, may update `extra_state`, and returns values for the
    curves; `curve_values(steps)` adds values of the recipe's own schedules beside the LR.
    `extra_state` is saved in every checkpoint and updated in place from it on resume. Only the main
    process writes curves and checkpoints; every process resumes from the same file. `history`, when
    given, receives [steps done, window means] at each log point of this run.
    """
    total = schedule.total_steps
    start, saved = resume(checkpointer, model, optimizer, total)
    if extra_state is not None:
        extra_state.update(saved)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])  # restored from the checkpoint when resuming
    # LR of step s = initial_lr × multiplier(s); constructing the scheduler sets step `start`'s.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lr_multiplier, last_epoch=start - 1)
    curves = Curves(curves_folder, start) if curves_folder is not None and is_main else None
    model.train()
    window, seen, waited, tick = [], 0, 0.0, time.perf_counter()
    iterator = iter(batches(start))
    for step in range(start, total):
        done = step + 1
        fetch = time.perf_counter()
        batch = next(iterator)
        waited += time.perf_counter() - fetch  # time the step waited for data
        window.append(step_fn(batch))
        seen += window[-1].get("batch_size", 0)
        record = {}
        if (done % schedule.log_every == 0 or done == total) and window:
            record = {k: float(np.mean([float(v[k]) for v in window])) for k in window[0] if k != "batch_size"}
            if is_main:
                _log_window(done, total, record, optimizer, seen, waited, time.perf_counter() - tick)
            if history is not None:
                history.append([done, dict(record)])
            window, seen, waited, tick = [], 0, 0.0, time.perf_counter()
        if evaluate is not None and is_main and _due(done, schedule.evaluate_every, total):
            record.update(evaluate(done))
            model.train()  # evaluation switched to eval mode
        if curves and record:
            lr = {"lr": optimizer.param_groups[0]["lr"]} if done % schedule.log_every == 0 or done == total else {}
            curves.log(done, {**record, **lr, **(curve_values(done) if curve_values and lr else {})})
        if done % schedule.checkpoint_every == 0 and done < total and is_main:
            checkpointer.save(done, model, optimizer, extra_state or {})
        if stop_after is not None and done >= stop_after:
            return done
        scheduler.step()
    if curves:
        curves.close()
    return total


def _due(done: int, every: int | None, total: int) -> bool:
    return done == total or (every is not None and done % every == 0)


def _log_window(done: int, total: int, means: dict, optimizer, seen: int, waited: float, elapsed: float) -> None:
    log.info(
        "step %d/%d %s lr %.3g %.1f samples/s (%.0f%% waiting for data)",
        done,
        total,
        " ".join(f"{k} {v:.4f}" for k, v in means.items()),
        optimizer.param_groups[0]["lr"],
        seen / max(elapsed, 1e-9),
        100 * waited / max(elapsed, 1e-9),
    )
