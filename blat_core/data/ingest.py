"""How a prepare run runs: decoding workers with bounded work in flight, and the log that lets a killed run
resume after its last whole shard (`blat_core.data.prepare` is what it computes)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from pathlib import Path

from blat_core.data.audio import load_clip
from blat_core.data.datasets.common import Problem
from blat_core.data.shards import shard_name
from blat_core.runtime import die_with_parent

log = logging.getLogger(__name__)


def load_chunk(jobs: list[tuple]) -> list:
    return [load_clip(*job) for job in jobs]


CHUNK = 8  # clips per task sent to a decoding worker
IN_FLIGHT = 4  # tasks queued per worker: decoded clips waiting for the writer stay O(workers), not O(dataset)


def bounded_map(pool: Executor, function: Callable, items: Iterable, window: int) -> Iterator:
    """`function` over `items` in `pool`, in order, with at most `window` calls submitted and not yet consumed:
    the input is pulled only as results are taken (`Executor.map` submits every item at once, and its finished
    results then wait for a slow consumer)."""
    items, pending = iter(items), deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= window:
            break
    while pending:
        result = pending.popleft().result()
        for item in items:
            pending.append(pool.submit(function, item))
            break
        yield result


def chunks(jobs: list[tuple], size: int) -> Iterator[list[tuple]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def worker_init(parent: int) -> None:
    import torch

    die_with_parent(parent)  # a SIGKILLed stage must not leave its decoding workers running
    torch.set_num_threads(1)  # one decoding process per core; no thread oversubscription


class Progress:
    """Resume state of a prepare run, in a scratch folder (never an output): the shards written so far and,
    per shard, the manifest rows and skipped clips it closed with. One JSON line per finished shard, written
    after the shard, so a run killed at any point resumes from its last whole shard; a line cut short by the
    kill, and a shard written after the last line, are redone. `key` names the inputs (params, scan
    fingerprint, listing, code): a run with other inputs starts over."""

    FILE = "progress.jsonl"

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = Path(folder), key
        self.jobs, self.shards, self.records, self.problems = 0, 0, [], []
        self._lines: list[str] = []
        self._handle = None

    def load(self) -> None:
        """Take over the finished shards of an earlier run with the same key (nothing otherwise)."""
        path = self.folder / self.FILE
        lines = path.read_text().splitlines() if path.is_file() else []
        try:
            same = bool(lines) and json.loads(lines[0]).get("key") == self.key
        except (json.JSONDecodeError, AttributeError):
            same = False
        if lines and not same:
            log.info("%s: an earlier partial run had other inputs; starting over", self.folder)
        for line in lines[1:] if same else []:
            try:
                step = json.loads(line)
            except json.JSONDecodeError:
                break  # the last line, cut short by the kill
            if not (self.folder / shard_name(step["shards"] - 1)).is_file():
                break
            self.jobs, self.shards = step["jobs"], step["shards"]
            self.records.extend(step["records"])
            self.problems.extend(Problem(*p) for p in step["problems"])
            self._lines.append(line)

    def start(self) -> None:
        """Rewrite the log to exactly what `load` took over, and open it for the next shards."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.FILE
        path.write_text("".join(f"{line}\n" for line in [json.dumps({"key": self.key}), *self._lines]))
        self._handle = path.open("a")

    def save(self, jobs: int, shards: int, records: list[dict], problems: list[Problem]) -> None:
        """Record a finished shard: `jobs` clips consumed before the first one of the next shard."""
        step = {"jobs": jobs, "shards": shards, "records": records,
                "problems": [[p.ref, p.audio_id, p.reason, p.detail] for p in problems]}  # fmt: skip
        self._handle.write(json.dumps(step) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def finish(self) -> None:
        """The run completed: its shards were moved out; nothing is left to resume."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        shutil.rmtree(self.folder, ignore_errors=True)
