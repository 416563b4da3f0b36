"""The run record of a trained model: when, with what seed, on what device and data, with which versions."""
from __future__ import annotations

import datetime as _dt
import platform
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..model.config import ChainSpec

__all__ = ["run_record"]


def run_record(spec: ChainSpec, device: torch.device, tables_info: dict[str, Any]) -> dict[str, Any]:
    """Name, creation time (UTC, ISO 8601), seed, device, library versions, platform and ``tables_info`` (as ``data``)."""
    import sklearn

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
            "scikit-learn": sklearn.__version__,
        },
        "platform": platform.platform(),
        "data": tables_info,
    }
