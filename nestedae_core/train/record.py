"""The run record of a trained model: when, with what seed, on what device and data, with which versions."""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..model.config import ChainSpec

__all__ = ["run_record"]


def run_record(spec: ChainSpec, device: torch.device, tables_info: dict[str, Any]) -> dict[str, Any]:
    """Name, creation time (UTC, ISO 8601), seed, device, library versions, platform and ``tables_info`` (as ``data``).

    scikit-learn's version is read from its installed metadata: importing it costs about 1 s of a training run."""
    return {
        "name": spec.name,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "seed": spec.seed,
        "device": str(device),
        "versions": {
            "nestedae_core": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": _installed_version("scikit-learn"),
        },
        "platform": platform.platform(),
        "data": tables_info,
    }


def _installed_version(distribution: str) -> str:
    """The installed version of ``distribution`` ("not installed" when it is not)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
