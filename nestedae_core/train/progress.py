"""What a training run reports while it runs: progress events and cancellation."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TrainingError

__all__ = ["ProgressCallback", "ProgressEvent", "TrainingCancelled"]


class TrainingCancelled(TrainingError):
    """Training was cancelled by the caller (``should_stop`` returned true)."""


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of a training run, passed to the callback.

    ``loss`` is the mean training loss over members (standardised units);
    ``val_loss`` the early-stopping validation loss when enabled; ``fraction`` the
    overall progress of the run in [0, 1]; ``elapsed_s`` seconds since the start.
    """

    stage: str
    stage_index: int
    n_stages: int
    epoch: int
    epochs: int
    loss: float
    member_losses: tuple[float, ...]
    val_loss: float | None
    fraction: float
    elapsed_s: float
    message: str = ""


#: A function called with each :class:`ProgressEvent` (about 100 per stage).
ProgressCallback = Callable[[ProgressEvent], None]
