"""The Sweep page (streamlit.testing AppTest): renders, lists a sweep's trials, saves the best, read-only mode."""
from __future__ import annotations

import pytest

from app_driver import exceptions, open_app, texts

pytestmark = pytest.mark.app

PAGE = "pages/sweep.py"


@pytest.fixture
def sweep_env(app_env, tmp_path, monkeypatch):
    """An empty models folder and a job store of our own; the models folder is returned."""
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_DASK_SCHEDULER", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS"):
        monkeypatch.delenv(var, raising=False)
    return app_env


def _button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button '{label}' in {[b.label for b in at.button]}"
    return found[0]


def test_page_renders_with_no_sweeps(sweep_env):
    at = open_app(PAGE)
    assert "Sweep" in [t.value for t in at.title]
    assert "No sweeps yet" in texts(at)
    assert not _button(at, "Start sweep").disabled
    assert [s.label for s in at.selectbox][:1] == ["Preset (chain)"]


def test_read_only_mode_disables_starting_and_saving(sweep_env, monkeypatch):
    monkeypatch.setenv("NESTEDAE_READ_ONLY", "1")
    at = open_app(PAGE)
    assert "read-only demo" in texts(at)
    assert _button(at, "Start sweep").disabled
    assert all(n.disabled for n in at.number_input)


def test_a_finished_sweep_shows_its_trials_and_saves_the_best(sweep_env, tmp_path):
    """A sweep run through the library on the server's job store appears for its owner; its best trial is saved."""
    import threading

    from nestedae_core.jobs import JobManager
    from nestedae_core.jobs.worker import run_job
    from nestedae_core.sweep import Sweep, SweepConfig

    class ThreadExecutor:  # run_job in a thread: fast, the real store and job kinds
        def submit(self, db_path: str, job_id: str) -> None:
            threading.Thread(target=run_job, args=(db_path, job_id), daemon=True).start()

        def shutdown(self) -> None:
            pass

    at = open_app(PAGE)
    owner = at.session_state["nae.jobs.identity"]  # this session's identity (app.jobs_state.identity)
    assert owner.startswith("browser-")
    manager = JobManager(executor=ThreadExecutor())
    sweep = Sweep.create(SweepConfig(preset="synthetic", n_trials=2, epochs=10, folds=3), manager, owner=owner, study_name="page-sweep")
    assert sweep.run(poll_s=0.1, timeout=300)

    at.run()
    assert not at.exception, exceptions(at)
    assert "page-sweep" in at.selectbox(key="sweep.selected").value
    frame = at.dataframe[0].value
    assert list(frame["state"]) == ["complete", "complete"]
    assert list(frame.columns)[:4] == ["trial", "state", "value", "error"]  # why a trial failed, beside its state
    assert "Best value" in [m.label for m in at.metric][0]
    at.text_input[0].set_value("page-best")
    _button(at, "Save best trial as a model").click().run()
    assert not at.exception, exceptions(at)
    assert "Saved trial" in texts(at)
    assert (sweep_env / "page-best" / "manifest.json").is_file()
