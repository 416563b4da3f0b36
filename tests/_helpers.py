"""Small helpers shared by test modules (the fixtures live in conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_path(name: str) -> Path:
    """Path of a reference dataset in $NESTEDAE_DATA_DIR (default ../shared/data from the repo root); skip if absent."""
    base = Path(os.environ.get("NESTEDAE_DATA_DIR", "../shared/data"))
    if not base.is_absolute():
        base = REPO_ROOT / base
    path = base / name
    if not path.is_file():
        pytest.skip(f"dataset {name} not found in {base}: set NESTEDAE_DATA_DIR to the folder holding the reference datasets")
    return path
