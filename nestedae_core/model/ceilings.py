"""Ceilings: upper limits of a target that depend on an upstream stage's prediction.

A target with a :class:`~nestedae_core.model.config.Ceiling` is predicted as a
fraction in (0, 1] of ``function(x)``, where ``x`` is the previous stage's
prediction of one of its targets on the same rows; a
:class:`~nestedae_core.model.config.Product` target is the product of other
targets. Both are configured as data; this module knows no domain: the
functions are registered by name (:func:`register_ceiling`) by the packages
that know them (e.g. :mod:`nestedae_core.physics` registers the
Shockley-Queisser limits).

A ceiling function maps a float tensor of upstream predictions (any shape) to a
tensor of limits of the same shape, in the target's units, differentiably where
possible, never negative, never NaN for finite input.

* :func:`upstream_ceilings`: the limit of every target of a stage from the
  upstream stage's latents (through the upstream network's own heads),
  per member or pooled (every member gets the ensemble-mean upstream prediction).
* :func:`target_caps`: the upper end of every target's range: the ceiling, 1 for a
  ``fraction``, the scaled product of the factors' caps for a product, infinity
  otherwise.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .config import StageSpec

if TYPE_CHECKING:  # torch loads with the first ceiling computed: registering one needs none
    import torch

__all__ = ["CeilingFunction", "ceiling_function", "has_ceilings", "known_ceilings", "register_ceiling", "target_caps", "upstream_ceilings"]

#: A ceiling function: upstream predictions (tensor) -> limits (tensor of the same shape, target units).
CeilingFunction = Callable[["torch.Tensor"], "torch.Tensor"]

_REGISTRY: dict[str, CeilingFunction] = {}


def register_ceiling(name: str, function: CeilingFunction) -> None:
    """Register a ceiling function under ``name`` (replacing an earlier one of that name)."""
    _REGISTRY[name] = function


def known_ceilings() -> list[str]:
    """Names of the registered ceiling functions, sorted."""
    return sorted(_REGISTRY)


def ceiling_function(name: str) -> CeilingFunction:
    """The ceiling function registered as ``name``; :class:`ConfigError` naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(known_ceilings()) or "none registered (import nestedae_core.physics first)"
        raise ConfigError(f"unknown ceiling function '{name}'; known: {known}") from None


def has_ceilings(spec: StageSpec) -> bool:
    """Whether any target of the stage has a ceiling."""
    return any(t.ceiling is not None for t in spec.targets)


def upstream_ceilings(spec: StageSpec, upstream_targets: list[str], upstream_values: torch.Tensor, *, pool: bool) -> torch.Tensor | None:
    """Limits of the stage's targets (members, rows, n_targets) from the upstream stage's predictions.

    ``upstream_values``: (members, rows, n_upstream_targets) the upstream stage's
    predictions in their units, columns named by ``upstream_targets``. ``pool``:
    every member gets the limit at the mean over members of the upstream
    prediction (what a prediction reports), else each member its own (training,
    where member ``m`` must only see what fold model ``m`` saw). Entries of
    targets without a ceiling are 1. None when no target has a ceiling.
    """
    if not has_ceilings(spec):
        return None
    import torch

    x = upstream_values.mean(dim=0, keepdim=True) if pool else upstream_values
    cols = []
    for t in spec.targets:
        if t.ceiling is None:
            cols.append(torch.ones_like(x[..., :1]))
        else:
            arg = x[..., upstream_targets.index(t.ceiling.of)]
            cols.append(ceiling_function(t.ceiling.function)(arg).to(x.dtype)[..., None])
    c = torch.cat(cols, dim=-1)
    return c.expand(upstream_values.shape[0], -1, -1) if pool else c


def target_caps(spec: StageSpec, ceilings: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Upper end of each target's range, ``shape + (n_targets,)``: its ceiling, 1 for a fraction,
    ``scale * prod(factor caps)`` for a product, infinity for an unbounded target.

    ``ceilings``: the output of :func:`upstream_ceilings` as an array broadcastable to
    ``shape + (n_targets,)``, or None.
    """
    T = len(spec.targets)
    caps = np.full(shape + (T,), np.inf)
    cols = [t.column for t in spec.targets]
    for j, t in enumerate(spec.targets):
        if t.ceiling is not None and ceilings is not None:
            caps[..., j] = np.broadcast_to(np.asarray(ceilings)[..., j], shape)
        elif t.bounds == "fraction":
            caps[..., j] = 1.0
    for j, t in enumerate(spec.targets):
        if t.product is not None:
            caps[..., j] = t.product.scale * np.prod([caps[..., cols.index(f)] for f in t.product.factors], axis=0)
    return caps
