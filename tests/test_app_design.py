"""The Design page (streamlit.testing AppTest): renders, runs a design as a job in a worker, shows ranked
proposals with intervals and links to Predict/Explain, reports an impossible window as a message."""
from __future__ import annotations

import threading

import pytest

from app_driver import exceptions, open_app, texts

pytestmark = pytest.mark.app

PAGE = "pages/design.py"


@pytest.fixture
def design_env(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_DASK_SCHEDULER", "NESTEDAE_MAX_DESIGN_EVALS"):
        monkeypatch.delenv(var, raising=False)
    return app_env


class ThreadExecutor:  # run_job in a thread: the real store and job kinds, without a worker process
    def submit(self, db_path: str, job_id: str) -> None:
        from nestedae_core.jobs.worker import run_job

        threading.Thread(target=run_job, args=(db_path, job_id), daemon=True).start()

    def shutdown(self) -> None:
        pass


class Observer:  # a manager that only reads the store: the page's own manager runs the job
    def submit(self, db_path: str, job_id: str) -> None:
        pass

    def shutdown(self) -> None:
        pass


def _button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button '{label}' in {[b.label for b in at.button]}"
    return found[0]


def _run_design(owner: str, window: tuple[float, float], evals: int = 30):
    from nestedae_core import store
    from nestedae_core.design import DesignProblem, QuantityRange
    from nestedae_core.design.job import DESIGN_KIND, design_payload
    from nestedae_core.jobs import JobManager

    manager = JobManager(executor=ThreadExecutor())
    problem = DesignProblem(constraints=[QuantityRange(quantity="bandgap_eV", minimum=window[0], maximum=window[1])],
                            b_ions=["Pb"], max_evals=evals, seed=0)  # lead halides: the chain's best-covered ground
    job = manager.submit(DESIGN_KIND, design_payload(problem, store.default_bundle_path()), owner=owner, name=f"test-{window[0]}-{window[1]}")
    return manager.wait(job, timeout=240)


def test_page_renders_with_no_designs(design_env):
    at = open_app(PAGE)
    assert "Design" in [t.value for t in at.title]
    assert "No designs yet" in texts(at)
    assert not _button(at, "Run design").disabled


def test_a_finished_design_shows_ranked_proposals_and_links(design_env):
    at = open_app(PAGE)
    owner = at.session_state["nae.jobs.identity"]
    rec = _run_design(owner, (1.50, 1.60))
    assert rec.status == "done", rec.error
    at.run()
    assert not at.exception, exceptions(at)
    assert "proposals in domain" in texts(at)
    frame = at.dataframe[0].value
    assert frame.columns[:2].tolist() == ["rank", "formula"]
    assert frame["bandgap_eV_mean"].between(1.50, 1.60).all()
    assert (frame["status"] == "ranked").all() and frame["rank"].tolist() == list(range(1, len(frame) + 1))
    for other in at.dataframe[1:]:  # proposals outside a stage's domain: a table of their own, without ranks
        assert "rank" not in other.value.columns and (other.value["status"] != "ranked").all()
    labels = [b.label for b in at.button]
    assert "Predict it" in labels and "Explain it" in labels
    first = frame.iloc[0]
    _button(at, "Predict it").click().run()  # opens Predict on the proposal with the stack the design used
    assert not at.exception, exceptions(at)
    assert at.session_state["nae.choice.ETL_stack_sequence"] == first["etl"]
    assert at.session_state["nae.choice.HTL_stack_sequence"] == first["htl"]


def test_an_impossible_window_is_a_message_not_an_empty_table(design_env):
    at = open_app(PAGE)
    owner = at.session_state["nae.jobs.identity"]
    rec = _run_design(owner, (3.05, 3.10), evals=20)
    assert rec.status == "failed"
    at.run()
    assert not at.exception, exceptions(at)
    errors = " ".join(str(e.value) for e in at.error)
    assert "no composition met the constraints" in errors and "closest" in errors
    assert not at.dataframe


def test_the_form_queues_a_design_job_in_a_worker(design_env):
    from nestedae_core.jobs import JobManager

    at = open_app(PAGE)
    at.number_input(key="design.budget").set_value(20)
    _button(at, "Run design").click().run()
    assert not at.exception, exceptions(at)
    owner = at.session_state["nae.jobs.identity"]
    observer = JobManager(executor=Observer())
    jobs = observer.jobs(owner, kind="design")
    assert len(jobs) == 1 and jobs[0].payload["problem"]["max_evals"] == 20
    rec = observer.wait(jobs[0].id, timeout=240)
    assert rec.status in ("done", "failed"), rec.status  # the worker process found and ran the design kind
    assert rec.status == "done" or "no composition met" in (rec.error or ""), rec.error
