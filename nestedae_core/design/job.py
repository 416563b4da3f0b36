"""A design as a job of the job store (kind ``design``): progress, cancel, limits, Dask when configured.

Payload: ``{"problem": <DesignProblem as JSON data>, "model": <bundle folder>, "sampler": "auto", "data_dir": ...}``.
The job writes ``proposals.csv`` (the :func:`~nestedae_core.design.proposal_table`), ``evaluated.csv``,
``history.csv`` and ``summary.json`` into its work folder; :func:`design_output` reads them back. While it
runs it keeps ``live.csv`` (every candidate evaluated so far, compact) up to date, which :func:`design_live`
reads (the page watches the Pareto front fill). A job
that is interrupted (server restart) can be submitted again with the same payload: the seed makes the
rerun give the same proposals.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ..errors import ConfigError, InputError
from ..io_safe import atomic_open, atomic_write_text
from ..jobs.kinds import JobContext, register_kind
from ..jobs.limits import LimitError
from ..jobs.settings import JobSettings
from .optimise import SAMPLERS, run_design
from .problem import DesignProblem
from .proposals import measured_reference, proposal_table

__all__ = ["DESIGN_KIND", "design_payload", "design_output", "design_live", "DesignOutput"]

#: Seconds between two writes of a running design's ``live.csv``.
LIVE_EVERY_S = 1.0

#: The job kind of a design run.
DESIGN_KIND = "design"


def design_payload(problem: DesignProblem, model_dir: str | Path, *, sampler: str = "auto", data_dir: str | None = None) -> dict[str, Any]:
    """The JSON payload of a design job for ``problem`` on the model bundle in ``model_dir``."""
    return {"problem": problem.model_dump(mode="json"), "model": str(model_dir), "sampler": sampler, "data_dir": data_dir}


def _problem(payload: dict[str, Any]) -> DesignProblem:
    try:
        return DesignProblem.model_validate(payload.get("problem") or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"design problem: {'.'.join(str(x) for x in err.get('loc', ()))}: "
                          f"{str(err.get('msg', 'invalid')).removeprefix('Value error, ')}") from None


def check_design(payload: dict[str, Any], settings: JobSettings) -> None:
    """Submission check: a valid problem, a known optimiser, a budget within ``max_design_evals``."""
    problem = _problem(payload)
    if payload.get("sampler", "auto") not in SAMPLERS:
        raise InputError(f"unknown optimiser '{payload.get('sampler')}': choose one of {', '.join(SAMPLERS)}")
    if problem.max_evals > settings.max_design_evals:
        raise LimitError(f"a design may use at most {settings.max_design_evals:,} model evaluations on this server "
                         f"(asked {problem.max_evals:,})", "NESTEDAE_MAX_DESIGN_EVALS", settings.max_design_evals)


def run_design_job(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Kind ``design``: run the payload's problem; write its tables into ``ctx.work_dir``."""
    from ..store import load_bundle

    problem = _problem(payload)
    model = load_bundle(payload["model"])

    def progress(done: int, total: int, best: float | None) -> None:
        ctx.progress({"fraction": done / max(total, 1), "evaluations": done, "budget": total, "best": best})

    work = Path(ctx.work_dir)
    live: list[pd.DataFrame] = []
    last_write = [0.0]

    def on_evaluated(rows: pd.DataFrame) -> None:
        live.append(rows)
        if time.monotonic() - last_write[0] >= LIVE_EVERY_S:
            with atomic_open(work / "live.csv", "w", newline="") as fh:
                pd.concat(live, ignore_index=True).to_csv(fh, index=False)
            last_write[0] = time.monotonic()

    result = run_design(model, problem, sampler=payload.get("sampler", "auto"), progress=progress, should_stop=ctx.should_stop,
                        on_evaluated=on_evaluated)
    table = proposal_table(result, measured=measured_reference(payload.get("data_dir")))
    for name, frame in (("proposals.csv", table), ("evaluated.csv", result.evaluated), ("history.csv", result.history)):
        with atomic_open(work / name, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
    summary = result.summary()
    atomic_write_text(work / "summary.json", json.dumps(summary, indent=1, default=float))
    return summary


@dataclass
class DesignOutput:
    """A finished design job's files: its summary, ranked proposals, every evaluated candidate and the search history."""

    summary: dict[str, Any]
    proposals: pd.DataFrame
    evaluated: pd.DataFrame
    history: pd.DataFrame

    @property
    def problem(self) -> DesignProblem:
        """The problem the job solved."""
        return DesignProblem.model_validate(self.summary["problem"])


def design_output(rec: Any) -> DesignOutput:
    """Read a finished design job back (a :class:`~nestedae_core.jobs.JobRecord`); :class:`InputError` when
    it is not a finished design or its files are gone."""
    if rec.kind != DESIGN_KIND or rec.status != "done":
        raise InputError(f"job '{rec.name}' is not a finished design")
    work = Path(rec.work_dir)
    try:
        summary = json.loads((work / "summary.json").read_text(encoding="utf-8"))
        frames = [pd.read_csv(work / n, keep_default_na=True) for n in ("proposals.csv", "evaluated.csv", "history.csv")]
    except (OSError, ValueError):
        raise InputError(f"the results of design '{rec.name}' are no longer on the server; run it again") from None
    for f in frames[:2]:
        for col in ("domain_stage", "nearest_formula", "etl", "htl"):
            if col in f:
                f[col] = f[col].fillna("").astype(str)
    return DesignOutput(summary, *frames)


def design_live(rec: Any) -> pd.DataFrame | None:
    """The candidates a running design job has evaluated so far (``live.csv``, see :func:`~nestedae_core.design.optimise.live_rows`),
    None before the first write or when the file cannot be read."""
    try:
        return pd.read_csv(Path(rec.work_dir) / "live.csv")
    except (OSError, ValueError):
        return None


register_kind(DESIGN_KIND, run_design_job, check=check_design)
