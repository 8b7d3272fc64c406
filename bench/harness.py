"""P worker processes that start a task at the same instant, and the statistics of what they did.

A worker is a separate interpreter (spawned, never forked: a fork would share the parent's
sockets) that keeps its imports and connections between tasks, like a warm Lambda container.
`WorkerPool.run(task, args_per_worker)` sends each worker its share, lets them all prepare, then
releases them together through one barrier and returns every worker's samples with the wall time
from the release to the last worker's end.

A sample is (kind, status, latency_s): kind says what was done ("hold", "pay", "read"), status is
the HTTP status (or the status the SQL outcome maps to).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

Sample = tuple[str, int, float]
START_TIMEOUT_S = 300


class WorkerFailed(RuntimeError):
    pass


def _resolve(task: str) -> Callable[..., Any]:
    module, _, name = task.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_main(
    index: int, pipe: Connection, barrier: Any, log_path: str | None, env: dict[str, str]
) -> None:
    os.environ.update(env)
    if log_path:
        # The app logs a JSON line per request; keep the terminal for the report.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    os.environ["BENCH_WORKER_INDEX"] = str(index)
    while True:
        message = pipe.recv()
        if message is None:
            return
        task, args = message

        def start() -> float:
            barrier.wait(timeout=START_TIMEOUT_S)
            return time.monotonic()

        try:
            result = _resolve(task)(args, start)
            pipe.send(("ok", result, time.monotonic()))
        except BaseException:
            pipe.send(("error", traceback.format_exc(), time.monotonic()))
            # A worker that failed before the barrier would leave the others waiting on it.
            barrier.abort()


@dataclass
class TaskResult:
    results: list[Any]
    started: float
    ended: float

    @property
    def wall_s(self) -> float:
        return max(self.ended - self.started, 1e-9)


class WorkerPool:
    def __init__(
        self, size: int, log_path: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.size = size
        self.barrier = context.Barrier(size + 1)
        self.pipes: list[Connection] = []
        self.processes = []
        for index in range(size):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(index, theirs, self.barrier, log_path, env or {}),
                name=f"bench-worker-{index}",
                daemon=True,
            )
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def run(self, task: str, per_worker: list[Any]) -> TaskResult:
        """`task` ("module:function") is called in each worker as function(args, start): it
        prepares, calls start() (the common barrier; returns the release time), does its work and
        returns what it measured."""
        return self.gather(self.dispatch(task, per_worker))

    def dispatch(self, task: str, per_worker: list[Any]) -> tuple[str, float]:
        """Start `task` on every worker and return once they are all released."""
        if len(per_worker) != self.size:
            raise ValueError("one argument per worker")
        for pipe, args in zip(self.pipes, per_worker, strict=True):
            pipe.send((task, args))
        # A broken barrier means a worker failed while preparing; gather() reports its error.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=START_TIMEOUT_S)
        return task, time.monotonic()

    def gather(self, dispatched: tuple[str, float]) -> TaskResult:
        """Wait for every worker's answer to a dispatched task."""
        task, started = dispatched
        results, errors, ended = [], [], started
        for pipe in self.pipes:
            status, payload, finished = pipe.recv()
            ended = max(ended, finished)
            if status == "ok":
                results.append(payload)
            else:
                errors.append(payload)
        if errors:
            self.barrier.reset()
            raise WorkerFailed(f"{task} failed in {len(errors)} worker(s):\n{errors[0]}")
        return TaskResult(results, started, ended)

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """Round-robin, so every part gets a similar mix."""
    return [items[i::parts] for i in range(parts)]


# --- statistics ------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def latency_stats(latencies_s: Iterable[float]) -> dict[str, float]:
    ordered = sorted(latencies_s)
    return {f"p{q}_ms": round(percentile(ordered, q) * 1000, 3) for q in (50, 95, 99)} | {
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 3)
    }


@dataclass
class Scenario:
    """One line of the report, in the contract's shape (plus extras)."""

    name: str
    samples: list[Sample]
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def counts(self, kind: str | None = None) -> dict[str, int]:
        found = Counter(str(s[1]) for s in self.samples if kind is None or s[0] == kind)
        return dict(sorted(found.items()))

    def per_s(self, kind: str | None = None) -> float:
        n = sum(1 for s in self.samples if kind is None or s[0] == kind)
        return round(n / self.wall_s, 1)

    def as_dict(self) -> dict[str, Any]:
        stats = latency_stats(s[2] for s in self.samples)
        kinds = sorted({s[0] for s in self.samples})
        return {
            "name": self.name,
            "requests_per_s": self.per_s(),
            "p50_ms": stats["p50_ms"],
            "p95_ms": stats["p95_ms"],
            "p99_ms": stats["p99_ms"],
            "max_ms": stats["max_ms"],
            "counts": self.counts(),
            "requests": len(self.samples),
            "wall_s": round(self.wall_s, 3),
            "by_kind": {
                kind: {
                    "per_s": self.per_s(kind),
                    **latency_stats(s[2] for s in self.samples if s[0] == kind),
                    "counts": self.counts(kind),
                }
                for kind in kinds
            },
            **self.extra,
        }


def collect(name: str, outcome: TaskResult, **extra: Any) -> Scenario:
    samples: list[Sample] = [s for worker in outcome.results for s in worker]
    return Scenario(name, samples, outcome.wall_s, extra)


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)
