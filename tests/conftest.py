"""Shared pytest fixtures; no test module imports fixtures from another.

Data
* ``data_dir`` (session): the folder holding the reference datasets
  (``$NESTEDAE_DATA_DIR``, else ``<repo>/../shared/data``); sets
  ``NESTEDAE_DATA_DIR`` to it for the rest of the session and skips every test
  that asks for it when a reference dataset is missing there.
* ``offline``: downloads fail (only ``file://`` URLs may be opened); returns the guarded opener.
* ``no_data_env``: no dataset anywhere: ``NESTEDAE_DATA_DIR`` and
  ``NESTEDAE_CACHE_DIR`` point at empty temporary folders, and ``offline``.

Models, trained once per session and shared by every module (treat them as read-only)
* ``tiny_paper``: the paper chain (40 epochs, 5 folds) on the reference data.
* ``tiny_synthetic``: the synthetic chain (30 epochs, 3 folds).
* ``sparse_synthetic``: ``(data, model)``: the synthetic dataset and a one-stage
  chain on its materials with sparse latents.

Dashboard
* ``default_model`` (session): the app's default model: the shipped bundle, or
  ``tiny_paper`` saved as a bundle and named by ``NESTEDAE_DEFAULT_MODEL``.
* ``app_env``: an empty models folder (returned) and the data folder, when present.

The helpers that drive the dashboard (``open_app``, ``texts``, ...) are in
tests/app_driver.py.

Lanes (README, "Run the tests")
* Every test belongs to exactly one lane: ``unit``, ``app``, ``browser`` or
  ``training``, usually by a module-level ``pytestmark``; a mark on a test or
  class overrides its module's. A test without a lane fails collection.
* ``slow`` is added to every ``training`` and ``browser`` test (and may mark any
  other slow test): ``-m "not slow"`` is the quick local run.
* ``training`` and ``browser`` tests get a 600 s timeout unless they name one
  (``@pytest.mark.timeout``); every other test the default of pyproject.toml.
* Exit status 5 (no test selected, e.g. ``-m browser`` with no test there) is
  turned into 0, so a lane that is empty here does not fail CI.
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR_ENV = "NESTEDAE_DATA_DIR"
CACHE_DIR_ENV = "NESTEDAE_CACHE_DIR"
#: the files of the data folder (every file of the dataset registry)
REFERENCE_DATASETS = (
    "PSC_bandgaps_dataset.csv", "PBE_data.csv", "HSE_data.csv", "PSC_efficiencies_dataset.csv", "Elem_prop.xlsx",
)

if str(REPO) not in sys.path:  # the dashboard's `app` package is a plain folder at the repo root
    sys.path.insert(0, str(REPO))

# One compute thread per process. The suite runs on two xdist workers that, with the worker processes,
# servers and commands they start (these inherit the variables), share the machine's cores: every torch,
# OpenMP, BLAS or numba pool the size of the machine only made them contend (training already runs on one
# thread, nestedae_core.threads). Set before anything imports torch; a value set outside is kept.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _reference_data_dir() -> Path | None:
    """``$NESTEDAE_DATA_DIR`` or ``<repo>/../shared/data`` when it holds every reference dataset, else None."""
    path = Path(os.environ.get(DATA_DIR_ENV) or REPO.parent / "shared" / "data")
    return path if all((path / name).is_file() for name in REFERENCE_DATASETS) else None


# --------------------------------------------------------------------------- lanes

LANES = ("unit", "app", "browser", "training")
#: lanes whose tests are slow by nature: marked ``slow`` too, and given LONG_TIMEOUT_S
SLOW_LANES = ("browser", "training")
LONG_TIMEOUT_S = 600


def _lanes(node: pytest.Item | pytest.Collector) -> list[str]:
    return [m.name for m in node.own_markers if m.name in LANES]


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each test its one lane (its own or its class's lane mark, else its module's); refuse tests without one."""
    module_lanes: dict[pytest.Module, list[str]] = {}
    for item in items:
        module = item.getparent(pytest.Module)
        if module is not None and module not in module_lanes:
            # the module's lane becomes a mark of each of its tests that has no lane of its own
            module_lanes[module] = _lanes(module)
            module.own_markers[:] = [m for m in module.own_markers if m.name not in LANES]
    missing: list[str] = []
    for item in items:
        own: list[str] = []
        node: Any = item
        while node is not None and not isinstance(node, pytest.Module):
            own += _lanes(node)
            node = node.parent
        lanes = set(own) or set(module_lanes.get(item.getparent(pytest.Module), []))  # type: ignore[arg-type]
        if len(lanes) != 1:
            missing.append(f"{item.nodeid}: {sorted(lanes) or 'no lane'}")
            continue
        (lane,) = lanes
        if not own:
            item.add_marker(lane)
        if lane in SLOW_LANES:
            item.add_marker("slow")
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_S))
    if missing:
        raise pytest.UsageError(
            "every test needs exactly one lane mark (" + ", ".join(LANES) + "): a module-level "
            "`pytestmark = pytest.mark.<lane>` or a mark on the test; see README, \"Run the tests\".\n  "
            + "\n  ".join(missing))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test selected (a lane empty here) is not a failure."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """The reference dataset folder; ``NESTEDAE_DATA_DIR`` is set to it. Skips when a dataset is absent."""
    path = _reference_data_dir()
    if path is None:
        where = os.environ.get(DATA_DIR_ENV) or REPO.parent / "shared" / "data"
        pytest.skip(f"reference datasets ({', '.join(REFERENCE_DATASETS)}) not found in {where}; "
                    f"set {DATA_DIR_ENV} to the folder holding them")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(path))
        yield path


_real_urlopen = urllib.request.urlopen


def _offline_urlopen(url, *args, **kwargs):  # type: ignore[no-untyped-def]
    target = url.full_url if isinstance(url, urllib.request.Request) else str(url)
    if not target.startswith("file:"):
        raise urllib.error.URLError("network disabled in tests")
    return _real_urlopen(url, *args, **kwargs)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Downloads fail: ``urllib.request.urlopen`` opens only ``file://`` URLs; returns that guarded opener."""
    monkeypatch.setattr(urllib.request, "urlopen", _offline_urlopen)
    return _offline_urlopen


@pytest.fixture
def no_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: Callable[..., Any]) -> Path:
    """Empty data folder and cache, downloads blocked; returns the (empty) data folder."""
    empty = tmp_path / "no-data"
    cache = tmp_path / "no-cache"
    empty.mkdir()
    cache.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(empty))
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    return empty


# --------------------------------------------------------------------------- models trained once per session


@pytest.fixture(scope="session")
def tiny_paper(data_dir: Path):  # type: ignore[no-untyped-def]
    """The paper chain trained for 40 epochs (5 folds): a ``CrossValidationResult``."""
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.train import cross_validate

    return cross_validate(preset("paper", epochs=40, seed=0), device="cpu")


@pytest.fixture(scope="session")
def tiny_synthetic():  # type: ignore[no-untyped-def]
    """The synthetic chain trained for 30 epochs (3 folds; no dataset needed): a ``CrossValidationResult``."""
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.train import cross_validate

    return cross_validate(preset("synthetic", epochs=30, folds=3), device="cpu")


@pytest.fixture(scope="session")
def sparse_synthetic():  # type: ignore[no-untyped-def]
    """``(data, model)``: ``generate()`` and its materials stage alone with sparse latents.

    L1 3.0 on the mean |encoder weight|, reconstruction weight 0.1, 600 epochs,
    5 folds (the preset's L1 1e-2 leaves all 6 latents active).
    """
    from nestedae_core.data.synthetic import generate
    from nestedae_core.model.config import ChainSpec
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.train import cross_validate

    data = generate()
    stage = preset("synthetic").stages[0].model_copy(update={"l1": 3.0, "reconstruction_weight": 0.1, "epochs": 600})
    spec = ChainSpec(name="synthetic-materials", stages=[stage], folds=5)
    return data, cross_validate(spec, tables={"materials": data.materials}, device="cpu").model


# --------------------------------------------------------------------------- dashboard


@pytest.fixture(scope="session")
def default_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Path of the app's default model: the shipped bundle, or ``tiny_paper`` saved here (needs the data)."""
    from app import model_state
    from nestedae_core import store

    env = os.environ.get(model_state.DEFAULT_MODEL_ENV)
    if env and Path(env).is_dir():
        yield Path(env)
    elif store.default_bundle_path().is_dir():
        yield store.default_bundle_path()
    else:
        path = store.save_bundle(request.getfixturevalue("tiny_paper"), tmp_path_factory.mktemp("default-model") / "tiny-paper")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(model_state.DEFAULT_MODEL_ENV, str(path))
            yield path


@pytest.fixture
def app_env(default_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty models folder (returned) and the data folder, when present."""
    from nestedae_core import store

    models = tmp_path / "models"
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(models))
    data = _reference_data_dir()
    if data is not None:
        monkeypatch.setenv(DATA_DIR_ENV, str(data))
    return models


@pytest.fixture
def paper_default(app_env, monkeypatch):
    """The shipped paper-default bundle as the app's default model (the paper chain:
    15 descriptors -> 12 latents -> band gap, DFT PBE (no SOC), then PCE)."""
    from app import model_state
    from nestedae_core import store

    path = store.shipped_bundle_path("paper-default") if hasattr(store, "shipped_bundle_path") else store.default_bundle_path()
    if not path.is_dir():
        pytest.skip("no shipped paper-default bundle")
    monkeypatch.setenv(model_state.DEFAULT_MODEL_ENV, str(path))
    return path
