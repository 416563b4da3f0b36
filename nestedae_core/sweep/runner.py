"""Run a sweep: ask Optuna for trials, run each as a job, tell Optuna the results.

A :class:`Sweep` is an Optuna study (in an RDB storage: by default the job
store's SQLite file, or any SQLAlchemy URL such as PostgreSQL for workers on
several machines) plus the :class:`~nestedae_core.jobs.JobManager` that runs
its trials as ordinary ``sweep-trial`` jobs, so the manager's limits, progress
events and cancelling apply to every trial.

:meth:`Sweep.step` does one round of bookkeeping and returns at once: it tells
the study the result of every trial whose job finished, then asks for new
trials and submits them while fewer than ``parallel`` of its trials run and
fewer than ``n_trials`` were started. Every piece of state lives in the study
(the sweep's configuration as a study attribute, each trial's job id as a
trial attribute) and in the job store, so a sweep survives its orchestrator:
:meth:`Sweep.open` picks a study up again (from another process, after a
restart) and the next :meth:`step` carries on. :meth:`run` steps until done
(the ``nestedae sweep`` command); the dashboard steps on each rerun.

Trials are comparable: every one is cross-validated on the same grouped folds
(the sweep's ``fold_seed``), whatever training seed it samples; the value is
the mean validation-fold MAE of the objective's target (its unit), minimised.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError, InputError, NestedAEError
from ..model.config import ChainSpec, config_error_message
from .objective import Objective
from .space import SearchSpace, default_space
from .storage import (
    _CANCEL_ATTR,
    _CONFIG_ATTR,
    _safe_url,
    _storage_guarded,
    default_storage_url,
    open_storage,
    storage_fault,
    validate_study_name,
)
from .trial import TRIAL_KIND, trial_payload

__all__ = [
    "MAX_TRIALS",
    "SweepConfig",
    "Sweep",
]

logger = logging.getLogger(__name__)

#: Most trials one sweep may ask for.
MAX_TRIALS = 500
_JOB_ATTR = "job_id"


class SweepConfig(BaseModel):
    """What a sweep trains and how (stored with the study, so a resumed sweep is the same sweep).

    ``preset``: the base chain (``epochs``/``folds`` override it; the split is
    always grouped); ``space``: the search space (None: :func:`default_space`);
    ``stage``/``target``: the objective (default: the last stage's first target);
    ``fold_seed``: seed of the folds shared by every trial; ``parallel``: trials run
    at once; ``sampler_seed``: seed of Optuna's TPE sampler.
    """

    model_config = ConfigDict(extra="forbid")

    preset: str
    n_trials: int = Field(ge=1, le=MAX_TRIALS)
    epochs: int | None = Field(default=None, ge=1, le=100_000)
    folds: int | None = Field(default=None, ge=2, le=20)
    fold_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    stage: str | None = None
    target: str | None = None
    space: SearchSpace | None = None
    parallel: int = Field(default=2, ge=1, le=64)
    sampler_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    device: str = "cpu"
    data_dir: str | None = None

    def base_spec(self) -> ChainSpec:
        """The preset's chain with the overrides, grouped split, seed = ``fold_seed``."""
        from ..perovskite.presets import preset

        return preset(self.preset, epochs=self.epochs, folds=self.folds, split="grouped", seed=self.fold_seed)

    def search_space(self) -> SearchSpace:
        """The search space in use (the given one, else the default of the base chain)."""
        return self.space if self.space is not None else default_space(self.base_spec())

    def objective(self) -> Objective:
        """The objective on the base chain."""
        return Objective.for_spec(self.base_spec(), self.stage, self.target)


class Sweep:
    """A running (or finished) sweep: an Optuna study whose trials are jobs of a manager.

    Create with :meth:`create` or :meth:`open`; advance with :meth:`step` or :meth:`run`.
    """

    def __init__(self, study: Any, config: SweepConfig, manager: Any, owner: str, *, storage_url: str | None = None) -> None:
        self.study = study
        self.storage_url = storage_url
        self.config = config
        self.manager = manager
        self.owner = str(owner)
        self.space = config.search_space()
        self.base = config.base_spec()
        self.objective = config.objective()
        self.last_refusal: str | None = None

    # ------------------------------------------------------------------ creating
    @classmethod
    def create(cls, config: SweepConfig, manager: Any, *, owner: str, study_name: str | None = None, storage: str | None = None) -> "Sweep":
        """Start a new sweep; refuses one that could not run (limits, unknown preset or stage, bad space).

        Raises:
            ConfigError: unknown preset, stage or target, or a space that does not fit the chain.
            InputError: the largest trial would break a job limit (named with its value),
                the study exists already, or the storage cannot be opened.
        """
        import optuna

        if not str(owner or "").strip():
            raise InputError("a sweep needs an owner (e.g. the session id)")
        name = validate_study_name(study_name or f"{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
        base = config.base_spec()
        space = config.search_space()
        space.check(base)
        config.objective()
        check_limits(manager, space.largest(base), config.n_trials)
        storage_obj = open_storage(storage)
        try:
            study = optuna.create_study(study_name=name, storage=storage_obj, direction="minimize", sampler=optuna.samplers.TPESampler(seed=config.sampler_seed))
            study.set_user_attr(_CONFIG_ATTR, json.loads(config.model_dump_json()))
            study.set_user_attr("owner", str(owner))
            study.set_user_attr("objective", config.objective().label(base))
        except optuna.exceptions.DuplicatedStudyError:
            raise InputError(f"a sweep named '{name}' exists already; resume it (nestedae sweep --study {name}) or choose another name") from None
        except Exception as exc:
            err = storage_fault(exc, storage)
            if err is None:
                raise
            raise err from None
        logger.info("sweep %s created: %s, %d trials", name, config.preset, config.n_trials)
        return cls(study, config, manager, owner, storage_url=storage)

    @classmethod
    def open(cls, study_name: str, manager: Any, *, owner: str, storage: str | None = None, n_trials: int | None = None) -> "Sweep":
        """Pick up an existing sweep (e.g. after a restart); ``n_trials`` raises or lowers its total.

        Raises:
            InputError: no such sweep in the storage, or the storage cannot be opened.
        """
        import optuna

        name = validate_study_name(study_name)
        if n_trials is not None and not 1 <= int(n_trials) <= MAX_TRIALS:
            raise ConfigError(f"a sweep has 1 to {MAX_TRIALS} trials, not {n_trials}")
        storage_obj = open_storage(storage)
        try:
            try:
                study = optuna.load_study(study_name=name, storage=storage_obj)
            except KeyError:
                raise InputError(f"no sweep named '{name}' in {_safe_url(storage or default_storage_url())}") from None
            raw = study.user_attrs.get(_CONFIG_ATTR)
            try:
                config = SweepConfig.model_validate(raw)
            except ValidationError as exc:
                raise InputError(f"study '{name}' is not a nestedae sweep ({config_error_message(exc)})") from None
            if n_trials is not None and n_trials != config.n_trials:
                config = config.model_copy(update={"n_trials": int(n_trials)})
                study.set_user_attr(_CONFIG_ATTR, json.loads(config.model_dump_json()))
            study.sampler = optuna.samplers.TPESampler(seed=config.sampler_seed + len(study.trials))
        except Exception as exc:
            err = storage_fault(exc, storage)
            if err is None:
                raise
            raise err from None
        sweep = cls(study, config, manager, owner, storage_url=storage)
        check_limits(manager, sweep.space.largest(sweep.base), config.n_trials)
        return sweep

    @property
    def name(self) -> str:
        """The study's name."""
        return str(self.study.study_name)

    # ------------------------------------------------------------------ stepping
    def _trials(self) -> list[Any]:
        return list(self.study.get_trials(deepcopy=False))

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called (by any process)."""
        return bool(self.study.user_attrs.get(_CANCEL_ATTR))

    @_storage_guarded
    def step(self) -> bool:
        """Tell finished trials, start new ones as slots allow; True once the sweep is over.

        Never blocks on training. A trial the manager refuses for a transient limit
        (queue full, too many jobs) is not started; :attr:`last_refusal` says why and
        a later step tries again.
        """
        from optuna.trial import TrialState

        running = 0
        launched = 0
        for t in self._trials():
            job_id = t.user_attrs.get(_JOB_ATTR)
            if t.state != TrialState.RUNNING:
                # a trial whose job was interrupted (server or CLI stopped) is run again by a new trial
                if job_id and not (t.state == TrialState.FAIL and job_info(self.manager, job_id)["status"] == "interrupted"):
                    launched += 1
                continue
            if job_id:
                launched += 1
            if not job_id:  # asked but never submitted (its orchestrator died in between)
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                continue
            info = job_info(self.manager, job_id)
            if info["status"] == "done":
                value = info.get("value")
                if value is None or not math.isfinite(float(value)):
                    self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                else:
                    self.study.tell(t.number, float(value), skip_if_finished=True)
            elif info["status"] in ("failed", "cancelled", "interrupted", "unknown"):
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                if info["status"] == "interrupted":
                    launched -= 1
            else:
                running += 1
        if self.cancelled:
            return running == 0
        self.last_refusal = None
        while launched < self.config.n_trials and running < self.config.parallel:
            trial = self.study.ask()
            values = self.space.suggest(trial)
            try:
                spec = self.space.apply(self.base, values)
            except ConfigError as exc:
                trial.set_user_attr("error", str(exc))
                self.study.tell(trial, state=TrialState.FAIL)
                launched += 1
                continue
            trial.set_user_attr("seed", int(spec.seed))
            trial.set_user_attr("fold_seed", int(self.config.fold_seed))
            payload = trial_payload(
                spec, fold_seed=self.config.fold_seed, stage=self.objective.stage, target=self.objective.target,
                study=self.name, trial_number=trial.number, params=values, data_dir=self.config.data_dir, device=self.config.device,
            )
            try:
                job_id = submit_trial(self.manager, payload, owner=self.owner, name=f"{self.name[:54]}-t{trial.number}")
            except InputError as exc:
                self.last_refusal = str(exc)
                trial.set_user_attr("error", f"not started: {exc}")
                self.study.tell(trial, state=TrialState.FAIL)
                logger.info("sweep %s: trial refused (%s)", self.name, exc)
                break
            trial.set_user_attr(_JOB_ATTR, job_id)
            launched += 1
            running += 1
        return running == 0 and launched >= self.config.n_trials

    @_storage_guarded
    def run(self, *, poll_s: float = 0.5, timeout: float | None = None, on_step: Callable[["Sweep"], None] | None = None) -> bool:
        """Step until the sweep is over (True) or ``timeout`` seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        refusals = 0
        while True:
            done = self.step()
            if on_step is not None:
                on_step(self)
            if done:
                return True
            if self.last_refusal and not self._any_running():
                refusals += 1
                if refusals >= 3:
                    raise InputError(f"sweep {self.name} cannot start its trials: {self.last_refusal}")
            else:
                refusals = 0
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_s)

    def _any_running(self) -> bool:
        from optuna.trial import TrialState

        return any(t.state == TrialState.RUNNING for t in self._trials())

    @_storage_guarded
    def cancel(self) -> int:
        """Stop the sweep: no new trials; running trial jobs are cancelled. Returns how many were asked to stop.

        Raises:
            InputError: the sweep belongs to another user (only its owner or an admin may cancel it).
        """
        from optuna.trial import TrialState

        started_by = self.study.user_attrs.get("owner")
        settings = getattr(self.manager, "settings", None)
        if started_by and started_by != self.owner and not (settings is not None and settings.is_admin(self.owner)):
            raise InputError(f"sweep {self.name} belongs to another user; only its owner may cancel it")
        self.study.set_user_attr(_CANCEL_ATTR, True)
        n = 0
        for t in self._trials():
            job_id = t.user_attrs.get(_JOB_ATTR)
            if t.state == TrialState.RUNNING and job_id:
                if cancel_job(self.manager, job_id, self.owner):
                    n += 1
        return n

    # ------------------------------------------------------------------ results
    @_storage_guarded
    def rows(self) -> list[dict[str, Any]]:
        """One row per trial: number, state, value, job status and progress, seed, parameters."""
        rows = []
        for t in self._trials():
            job_id = t.user_attrs.get(_JOB_ATTR)
            info = job_info(self.manager, job_id) if job_id else {"status": "", "progress": None}
            rows.append({
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": t.value if t.values else None,
                "job": job_id or "",
                "job_status": info["status"],
                "progress_percent": info.get("progress"),
                "seed": t.user_attrs.get("seed"),
                "error": t.user_attrs.get("error") or info.get("error") or "",
                "params": dict(t.params),
            })
        return rows

    @_storage_guarded
    def best(self) -> dict[str, Any] | None:
        """The best complete trial (lowest value) as a row, or None before the first completes."""
        from optuna.trial import TrialState

        done = [t for t in self._trials() if t.state == TrialState.COMPLETE and t.value is not None]
        if not done:
            return None
        b = min(done, key=lambda t: (t.value, t.number))
        return {"trial": b.number, "value": b.value, "job": b.user_attrs.get(_JOB_ATTR, ""), "seed": b.user_attrs.get("seed"), "params": dict(b.params)}

    @_storage_guarded
    def state(self) -> str:
        """``running`` (trials to run or running), ``finished``, ``stopping`` (cancelled, trials still stopping) or ``cancelled``."""
        from optuna.trial import TrialState

        trials = self._trials()
        running = sum(1 for t in trials if t.state == TrialState.RUNNING)
        if self.cancelled:
            return "stopping" if running else "cancelled"
        launched = sum(
            1 for t in trials if t.user_attrs.get(_JOB_ATTR)
            and not (t.state == TrialState.FAIL and job_info(self.manager, t.user_attrs[_JOB_ATTR])["status"] == "interrupted")
        )
        return "finished" if running == 0 and launched >= self.config.n_trials else "running"

    @_storage_guarded
    def counts(self) -> dict[str, int]:
        """Trials per state (complete, fail, running) and how many the sweep asks for."""
        out = {"complete": 0, "fail": 0, "running": 0, "n_trials": self.config.n_trials}
        for t in self._trials():
            key = t.state.name.lower()
            if key in out:
                out[key] += 1
        return out

    @_storage_guarded
    def save_best(self, name: str, *, overwrite: bool = False) -> Path:
        """Save the best trial's trained model as ``name`` in the models folder (its staged bundle promoted).

        Raises:
            InputError: no trial has completed yet, or the name is not allowed.
            BundleError: a model of that name exists (and ``overwrite`` is false).
        """
        best = self.best()
        if best is None or not best["job"]:
            raise InputError(f"sweep {self.name} has no finished trial yet; wait for one to complete")
        return save_job_model(self.manager, best["job"], name, owner=self.owner, overwrite=overwrite)


# ---------------------------------------------------------------------- the job manager's side


def submit_trial(manager: Any, payload: dict[str, Any], *, owner: str, name: str) -> str:
    """Submit a ``sweep-trial`` job; returns its id (limits refuse with :class:`InputError`)."""
    return str(manager.submit(TRIAL_KIND, payload, owner=owner, name=name))


def job_manager_for_cli() -> Any:
    """A :class:`~nestedae_core.jobs.JobManager` on the configured job store and executor."""
    from ..jobs import JobManager

    return JobManager()


def job_info(manager: Any, job_id: str) -> dict[str, Any]:
    """Status (``queued``/``running``/``done``/``failed``/``cancelled``/``interrupted``/``unknown``), progress, value, error of a job."""
    job = manager.get(job_id)
    if job is None:
        return {"status": "unknown", "progress": None, "error": "job not found in the job store"}
    result = job.result or {}
    value = result.get("value") if isinstance(result, dict) else None
    progress = 1.0 if job.status == "done" else job.fraction
    return {
        "status": str(job.status),
        "progress": None if progress is None else round(100.0 * float(progress), 1),
        "value": value,
        "error": getattr(job, "error", None) or "",
    }


def cancel_job(manager: Any, job_id: str, owner: str) -> bool:
    """Ask a job to stop; False when it had finished."""
    try:
        return bool(manager.cancel(job_id, owner))
    except NestedAEError:
        return False


def save_job_model(manager: Any, job_id: str, name: str, *, owner: str, overwrite: bool = False) -> Path:
    """Promote a finished trial job's staged bundle to a saved model."""
    return Path(manager.save(job_id, name, owner=owner, overwrite=overwrite))


def check_limits(manager: Any, largest: ChainSpec, n_trials: int) -> None:
    """Refuse a sweep the server would not run: read-only mode, or a largest trial over the size limits.

    Raises :class:`~nestedae_core.jobs.LimitError` naming the limit's setting and its value.
    """
    from ..jobs.limits import LimitError, check_chain, check_read_only

    check_read_only(manager.settings, "training (and sweeps)")
    try:
        check_chain(largest, manager.settings)
    except LimitError as exc:
        reason = str(exc).removeprefix("refused: ")
        raise LimitError(f"refused: in the sweep's largest trial {reason}; or narrow the search space", exc.setting, exc.value) from None
