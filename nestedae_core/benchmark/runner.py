"""Running a benchmark's steps: one after the other, or in parallel worker processes, with progress.

A benchmark is cut into independent :class:`Step` s (one NestedAE cross-validation
of a preset, one baseline on one fold); :func:`run_steps` runs them in this
process (``jobs=1``) or in ``jobs`` worker processes (joblib's loky backend) and
reports each finished step as a :class:`StepDone` (steps done, steps in all,
seconds). Every step is a pure function of its arguments (fixed seeds, the same
rows and folds), so the results are the same whatever ``jobs`` and whatever order
the steps finish in; only the timings differ. In a worker each step runs with one
CPU thread (:func:`nestedae_core.threads.limit_cpu_threads`), so ``jobs`` workers
use about ``jobs`` cores.
"""
from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["Step", "StepDone", "check_jobs", "run_steps"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Step:
    """One unit of work: ``fn(*args)`` for ``model`` on ``task`` (``"*"``: every task of a preset) under ``split``, one ``fold`` or all (None)."""

    task: str
    split: str
    model: str
    fold: int | None
    fn: Callable[..., Any]
    args: tuple[Any, ...]

    def label(self) -> str:
        """``bandgap-paper (grouped): ridge, fold 2`` (no fold: every fold of that model)."""
        fold = "" if self.fold is None else f", fold {self.fold}"
        return f"{self.task} ({self.split}): {self.model}{fold}"


@dataclass(frozen=True)
class StepDone:
    """Progress: ``done`` of ``total`` steps finished, the last one ``step`` (``index`` in the list run) after ``seconds`` (wall clock, s)."""

    done: int
    total: int
    step: Step
    seconds: float
    index: int

    def __str__(self) -> str:
        return f"[{self.done}/{self.total}] {self.step.label()} ({self.seconds:.1f} s)"


def check_jobs(jobs: int) -> int:
    """``jobs`` as a worker count (at least 1); ConfigError otherwise."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs must be a whole number >= 1, got {jobs!r}")
    return jobs


def _timed(fn: Callable[..., Any], args: tuple[Any, ...], one_thread: bool) -> tuple[Any, float]:
    """``fn(*args)`` and its wall-clock seconds; with ``one_thread``, limited to one CPU thread and quiet."""
    t0 = time.perf_counter()
    if not one_thread:
        return fn(*args), time.perf_counter() - t0
    from ..threads import limit_cpu_threads

    with limit_cpu_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a worker's warnings would interleave with the progress display
        result = fn(*args)
    return result, time.perf_counter() - t0


def run_steps(steps: Sequence[Step], *, jobs: int = 1, progress: Callable[[StepDone], None] | None = None) -> list[Any]:
    """The result of every step, in the order of ``steps``; ``progress`` is called as each one finishes.

    ``jobs=1`` runs the steps here, in order; more run them in that many worker
    processes, the longest first (the order given), results collected as they
    come. An exception raised by a step is raised here.
    """
    jobs = check_jobs(jobs)
    say = progress or (lambda done: None)
    results: list[Any] = [None] * len(steps)
    if jobs == 1 or len(steps) <= 1:
        for i, step in enumerate(steps):
            results[i], secs = _timed(step.fn, step.args, False)
            say(StepDone(i + 1, len(steps), step, secs, i))
        return results
    from joblib import Parallel, delayed

    def indexed(i: int, step: Step) -> tuple[int, Any, float]:
        out, secs = _timed(step.fn, step.args, True)
        return i, out, secs

    workers = min(jobs, len(steps))
    logger.info("running %d benchmark steps in %d worker processes", len(steps), workers)
    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered", pre_dispatch="all")
    for done, (i, out, secs) in enumerate(parallel(delayed(indexed)(i, s) for i, s in enumerate(steps)), start=1):
        results[i] = out
        say(StepDone(done, len(steps), steps[i], secs, i))
    return results
