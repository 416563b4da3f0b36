"""Shared pytest fixtures (keep this file small; add fixtures below the existing ones).

* ``data_dir``: the folder holding the reference datasets (``$NESTEDAE_DATA_DIR``,
  else ``<repo>/../shared/data``); sets ``NESTEDAE_DATA_DIR`` to it for the test
  and skips the test when the folder is absent.
* ``no_data_env``: no dataset anywhere: ``NESTEDAE_DATA_DIR`` and
  ``NESTEDAE_CACHE_DIR`` point at empty temporary folders and downloads fail
  (only ``file://`` URLs may be opened).
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR_ENV = "NESTEDAE_DATA_DIR"
CACHE_DIR_ENV = "NESTEDAE_CACHE_DIR"

if str(REPO) not in sys.path:  # the dashboard's `app` package is a plain folder at the repo root
    sys.path.insert(0, str(REPO))


def shared_data_dir() -> Path:
    """``$NESTEDAE_DATA_DIR`` or ``<repo>/../shared/data`` (may not exist)."""
    return Path(os.environ.get(DATA_DIR_ENV) or REPO.parent / "shared" / "data")


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dataset folder; ``NESTEDAE_DATA_DIR`` is set to it. Skips when it is absent."""
    path = shared_data_dir()
    if not (path / "PSC_efficiencies_dataset.csv").is_file():
        pytest.skip(f"reference datasets not found in {path}; set {DATA_DIR_ENV} to the folder holding them")
    monkeypatch.setenv(DATA_DIR_ENV, str(path))
    return path


_real_urlopen = urllib.request.urlopen


def _offline_urlopen(url, *args, **kwargs):
    target = url.full_url if isinstance(url, urllib.request.Request) else str(url)
    if not target.startswith("file:"):
        raise urllib.error.URLError("network disabled in tests (no_data_env)")
    return _real_urlopen(url, *args, **kwargs)


@pytest.fixture
def no_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty data folder and cache, downloads blocked; returns the (empty) data folder."""
    empty = tmp_path / "no-data"
    cache = tmp_path / "no-cache"
    empty.mkdir()
    cache.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(empty))
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    monkeypatch.setattr(urllib.request, "urlopen", _offline_urlopen)
    return empty
