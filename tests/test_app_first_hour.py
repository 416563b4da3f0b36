"""A scientist's first hour on the dashboard (issue 18): no late failures on a fresh install without data,
zero amounts accepted, the measured gap first on Predict."""
from __future__ import annotations

import pytest

from app_driver import exceptions, open_app, texts
from nestedae_core import store

pytestmark = pytest.mark.app


@pytest.fixture
def fresh_install(default_model, tmp_path, monkeypatch, no_data_env):
    """No dataset anywhere, an empty models folder and a job store of our own."""
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_DASK_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_train_without_data_is_refused_up_front_and_offers_the_synthetic_preset(fresh_install):
    at = open_app("pages/train.py")
    assert not at.exception, exceptions(at)
    assert at.selectbox(key="train.preset").value == "measured"
    refusal = " ".join(e.value for e in at.error)
    assert "Cannot train here" in refusal and "nestedae data fetch" in refusal and "NESTEDAE_DATA_DIR" in refusal
    assert "PSC_efficiencies_dataset.csv" in refusal
    assert at.button(key="train.measured.submit").disabled  # nothing can be queued
    at.button(key="train.use_synthetic").click().run()
    assert not at.exception, exceptions(at)
    assert at.selectbox(key="train.preset").value == "synthetic"
    assert not at.error and not at.button(key="train.synthetic.submit").disabled


def test_sweep_without_data_is_refused_up_front(fresh_install):
    at = open_app("pages/sweep.py")
    assert not at.exception, exceptions(at)
    refusal = " ".join(e.value for e in at.error)
    assert "Cannot sweep here" in refusal and "nestedae data fetch" in refusal
    start = next(b for b in at.button if b.label == "Start sweep")
    assert start.disabled
    at.button(key="sweep.use_synthetic").click().run()
    assert at.selectbox(key="sweep.preset").value == "synthetic"
    assert not at.error and not next(b for b in at.button if b.label == "Start sweep").disabled
