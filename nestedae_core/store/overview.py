"""A bundle's chain and summary read from its JSON files, without loading its weights (nor torch).

What a page that only describes the active model needs (its stages, targets and
cross-validation errors): :func:`bundle_overview` gives the
:class:`~nestedae_core.model.config.ChainSpec` and the same table as
:meth:`NestedAE.summary() <nestedae_core.model.chain.NestedAE.summary>` of the loaded model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BundleError
from ..model.config import ChainSpec
from ..model.summary import chain_summary
from .loading import _check_files, _headline, _read_json, _read_spec

__all__ = ["BundleOverview", "bundle_overview"]


@dataclass(frozen=True)
class BundleOverview:
    """A saved model described without its weights.

    Attributes:
        path: the bundle folder.
        spec: its chain (stages, inputs, targets with their units).
        summary: name -> value lines, as :meth:`NestedAE.summary` gives them (MAEs in the targets' units).
    """

    path: Path
    spec: ChainSpec
    summary: dict[str, str]


def _members(root: Path, prep: Any) -> int:
    try:
        return len(prep["stages"][0]["preprocessing"]["cont_mean"])
    except (KeyError, TypeError, IndexError) as exc:
        raise BundleError(f"bundle {root}: preprocessing.json is malformed ({type(exc).__name__}: {exc})") from None


def _intervals(root: Path, sums: dict[str, str]) -> str | None:
    """``"scaled"``, ``"normalised"``, ``"plain"`` or None: the kind of prediction intervals calibration.json gives."""
    if not ((root / "calibration.json").is_file() and "calibration.json" in sums):
        return None
    cal = _read_json(root / "calibration.json")
    try:
        targets = [c for stage in cal.get("stages", {}).values() for c in stage.values()]
    except (AttributeError, TypeError) as exc:
        raise BundleError(f"bundle {root}: calibration.json is malformed ({type(exc).__name__}: {exc})") from None
    if not targets:
        return None
    if any(isinstance(c, dict) and c.get("distance_coef") is not None for c in targets):
        return "scaled"
    return "normalised" if any(isinstance(c, dict) and c.get("normalised") for c in targets) else "plain"


def bundle_overview(path: str | os.PathLike[str]) -> BundleOverview:
    """The chain and summary of the bundle at ``path``, from its JSON files (checksums are checked when it loads).

    Raises :class:`~nestedae_core.errors.BundleError` naming what is wrong when the folder is not a readable bundle.
    """
    root = Path(path)
    sums = _check_files(root)
    _, spec = _read_spec(root)
    metrics = _read_json(root / "metrics.json")
    _headline(root, metrics)  # checks its shape
    record = _read_json(root / "record.json")
    if not isinstance(record, dict):
        raise BundleError(f"bundle {root}: record.json must hold an object, not {type(record).__name__}; the bundle is corrupt")
    record = {**record, "name": root.name}  # the saved name, as a loaded model names itself
    members = _members(root, _read_json(root / "preprocessing.json"))
    summary = chain_summary(spec, record, metrics, members=members, intervals=_intervals(root, sums))
    return BundleOverview(root, spec, summary)
