"""One trial of a sweep as a job: the job kind ``sweep-trial``.

The payload (JSON) carries everything a worker on any machine needs: the trial's
chain spec (the base spec with the trial's sampled values applied), the fold
seed, the objective (stage, target), the data folder and the device. The job
cross-validates the spec on the sweep's fixed folds
(:func:`~.objective.cross_validate_on_folds`), reports progress, stops when
cancelled, writes the trained model as a staged bundle into its private work
folder (so the best trial can be saved as a model without retraining) and
returns the objective value with the per-fold errors and both seeds.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..jobs.kinds import register_kind
from ..model.config import ChainSpec

__all__ = ["TRIAL_KIND", "BUNDLE_DIRNAME", "trial_payload", "run_trial", "check_trial"]

logger = logging.getLogger(__name__)

#: Job kind of a sweep trial.
TRIAL_KIND = "sweep-trial"
#: Name of the staged bundle folder inside a trial job's work folder.
BUNDLE_DIRNAME = "bundle"


def trial_payload(
    spec: ChainSpec,
    *,
    fold_seed: int,
    stage: str,
    target: str,
    study: str,
    trial_number: int,
    params: dict[str, Any],
    data_dir: str | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """The JSON-able payload of a ``sweep-trial`` job."""
    return {
        "spec": json.loads(spec.model_dump_json()),
        "fold_seed": int(fold_seed),
        "stage": stage,
        "target": target,
        "study": study,
        "trial_number": int(trial_number),
        "params": dict(params),
        "data_dir": None if data_dir is None else str(data_dir),
        "device": str(device or "cpu"),
    }


def _event_dict(event: Any) -> dict[str, Any]:
    if is_dataclass(event):
        d = asdict(event)
        d.pop("member_losses", None)
        return d
    return dict(event) if isinstance(event, dict) else {"message": str(event)}


def run_trial(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Run one sweep trial (the ``sweep-trial`` job function); returns ``{'value': ..., ...}``.

    ``value`` is the mean validation-fold MAE of the objective's target (its unit);
    ``fold_values`` the per-fold MAEs; ``seed`` the training seed and ``fold_seed``
    the folds' seed; ``bundle`` the staged bundle's folder name inside the work folder.
    Raises :class:`ConfigError` for a malformed payload, and whatever training raises
    (``TrainingCancelled`` when the job is cancelled).
    """
    from .. import store
    from .objective import Objective, cross_validate_on_folds

    try:
        spec = ChainSpec.model_validate(payload["spec"])
        fold_seed = int(payload["fold_seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed sweep-trial payload: {' '.join(str(exc).split())[:200]}") from None
    objective = Objective.for_spec(spec, payload.get("stage"), payload.get("target"))
    result = cross_validate_on_folds(
        spec, fold_seed, data_dir=payload.get("data_dir"), device=payload.get("device") or "cpu",
        callback=lambda ev: ctx.progress(_event_dict(ev)), should_stop=ctx.should_stop,
    )
    value = objective.value(result)
    bundle = Path(ctx.work_dir) / BUNDLE_DIRNAME
    store.save_bundle(result, bundle, overwrite=True)
    _write_oof(result.oof, Path(ctx.work_dir) / "oof.csv")
    logger.info("sweep %s trial %s: %s = %.6g", payload.get("study"), payload.get("trial_number"), objective.target, value)
    return {
        "value": value,
        "fold_values": objective.fold_values(result),
        "stage": objective.stage,
        "target": objective.target,
        "seed": int(spec.seed),
        "fold_seed": fold_seed,
        "params": payload.get("params", {}),
        "study": payload.get("study"),
        "trial_number": payload.get("trial_number"),
        "seconds": result.seconds,
        "bundle": str(bundle),
    }


def _write_oof(oof: dict[str, Any], path: Path) -> None:
    """Out-of-fold predictions of every stage in one CSV (a ``stage`` column first), written atomically."""
    import pandas as pd

    from ..io_safe import atomic_open

    frames = [df.assign(stage=stage)[["stage", *df.columns]] for stage, df in oof.items()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["stage"])
    with atomic_open(path, "w", newline="") as fh:
        frame.to_csv(fh, index=False)


def check_trial(payload: dict[str, Any], settings: Any) -> None:
    """Submission check of a ``sweep-trial`` job: a valid spec within the model-size and epochs x folds limits."""
    from ..jobs.limits import check_chain

    try:
        spec = ChainSpec.model_validate(payload["spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed sweep-trial payload: {' '.join(str(exc).split())[:200]}") from None
    check_chain(spec, settings)


register_kind(TRIAL_KIND, run_trial, check=check_trial)
