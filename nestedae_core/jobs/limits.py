"""Limits on what a job may ask for: model size, epochs x folds, jobs per user, queue length, read-only mode.

A refused job raises :class:`LimitError` (an :class:`~nestedae_core.errors.InputError`)
whose message names the limit's setting and its value, e.g.
``refused: the model has 3.4e+09 parameters; the limit NESTEDAE_MAX_PARAMETERS is 5000000``.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InputError
from .settings import ENV_NAMES, JobSettings

if TYPE_CHECKING:
    from ..model.config import ChainSpec, StageSpec

__all__ = [
    "LimitError",
    "CATEGORY_WIDTH_ESTIMATE",
    "estimate_parameters",
    "epoch_folds",
    "check_read_only",
    "check_chain",
    "check_counts",
]

#: One-hot width assumed per categorical input when counting parameters before the data is read (count).
CATEGORY_WIDTH_ESTIMATE = 16


class LimitError(InputError):
    """A job or a save refused by a limit; ``setting`` names the limit's variable and ``value`` its value."""

    def __init__(self, message: str, setting: str, value: object) -> None:
        super().__init__(message)
        self.setting = setting
        self.value = value


def _var(field: str) -> str:
    return ENV_NAMES[field][0]


def _mlp(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _stage_parameters(stage: "StageSpec", upstream_latent: int) -> int:
    n_cont = len(stage.numeric_inputs) + (upstream_latent if stage.upstream else 0)
    width = n_cont + CATEGORY_WIDTH_ESTIMATE * len(stage.categorical_inputs)
    total = _mlp([width, *stage.encoder_hidden, stage.latent_dim])
    total += len(stage.targets) * _mlp([stage.latent_dim, *stage.head_hidden, 1])
    if n_cont:
        total += _mlp([stage.latent_dim, *stage.decoder_hidden, n_cont])
    total += len(stage.categorical_inputs) * _mlp([stage.latent_dim, *stage.decoder_hidden, CATEGORY_WIDTH_ESTIMATE])
    return total


def estimate_parameters(spec: "ChainSpec", members: int | None = None) -> int:
    """Trainable parameters of the chain's networks for ``members`` ensemble members (default: ``spec.folds``).

    Exact for numeric inputs; each categorical input counts as
    :data:`CATEGORY_WIDTH_ESTIMATE` one-hot columns (the real count is known only
    once the data is read).
    """
    m = spec.folds if members is None else int(members)
    total, prev_latent = 0, 0
    for stage in spec.stages:
        total += _stage_parameters(stage, prev_latent)
        prev_latent = stage.latent_dim
    return total * m


def epoch_folds(spec: "ChainSpec") -> int:
    """The sum of the stages' epochs times the folds (count): how much training a cross-validation asks for."""
    return sum(int(s.epochs) for s in spec.stages) * int(spec.folds)


def check_read_only(settings: JobSettings, what: str = "training") -> None:
    """Raise :class:`LimitError` when the server is a read-only demo."""
    if settings.read_only:
        raise LimitError(f"{what} is switched off on this server: it is a read-only demo ({_var('read_only')}=1)",
                         _var("read_only"), True)


def check_chain(spec: "ChainSpec", settings: JobSettings, *, runs: int = 1) -> None:
    """Refuse a chain larger than ``max_parameters`` or longer than ``max_epoch_folds`` (``runs`` trainings of it)."""
    n = estimate_parameters(spec)
    if n > settings.max_parameters:
        raise LimitError(f"refused: the model has about {n:,} parameters ({spec.folds} ensemble members); the limit "
                         f"{_var('max_parameters')} is {settings.max_parameters:,}: use fewer or narrower hidden layers",
                         _var("max_parameters"), settings.max_parameters)
    ef = epoch_folds(spec) * max(1, int(runs))
    if ef > settings.max_epoch_folds:
        what = f"{runs} runs x " if runs > 1 else ""
        raise LimitError(f"refused: {what}epochs x folds is {ef:,}; the limit {_var('max_epoch_folds')} is "
                         f"{settings.max_epoch_folds:,}: use fewer epochs or folds", _var("max_epoch_folds"), settings.max_epoch_folds)


def check_counts(con: sqlite3.Connection, owner: str, settings: JobSettings) -> None:
    """Refuse a new job when its owner has ``max_jobs_per_owner`` active jobs or the queue holds ``max_queued``.

    ``con``: a connection inside the submitting transaction (the counts and the insert are atomic).
    """
    mine = con.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')", (owner,)).fetchone()[0]
    if mine >= settings.max_jobs_per_owner:
        raise LimitError(f"refused: you already have {mine} jobs queued or running; the limit {_var('max_jobs_per_owner')} "
                         f"is {settings.max_jobs_per_owner}: wait for one to finish or cancel one",
                         _var("max_jobs_per_owner"), settings.max_jobs_per_owner)
    queued = con.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
    if queued >= settings.max_queued:
        raise LimitError(f"refused: {queued} jobs are waiting in the queue; the limit {_var('max_queued')} is "
                         f"{settings.max_queued}: try again when the queue is shorter", _var("max_queued"), settings.max_queued)
