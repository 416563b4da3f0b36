"""The Design page (streamlit.testing AppTest): renders, runs a design as a job in a worker, shows ranked
proposals with intervals and links to Predict/Explain, reports an impossible window as a message."""
from __future__ import annotations

import json
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


def _run_design(owner: str, window: tuple[float, float], evals: int = 30, *, second=None, executor=None):
    from nestedae_core import store
    from nestedae_core.design import DesignProblem, Objective, QuantityRange
    from nestedae_core.design.job import DESIGN_KIND, design_payload
    from nestedae_core.jobs import JobManager

    manager = JobManager(executor=executor or ThreadExecutor())
    objectives = [Objective(quantity="pce_percent")] + ([second] if second is not None else [])
    problem = DesignProblem(objectives=objectives,
                            constraints=[QuantityRange(quantity="bandgap_eV", minimum=window[0], maximum=window[1])],
                            b_ions=["Pb"], max_evals=evals, seed=0)  # lead halides: the chain's best-covered ground
    # tpe: the page's own optimiser ('auto') is the job's default; these tests are about the page, not the optimiser
    job = manager.submit(DESIGN_KIND, design_payload(problem, store.default_bundle_path(), sampler="tpe"), owner=owner,
                         name=f"test-{window[0]}-{window[1]}")
    if executor is not None:
        return job
    return manager.wait(job, timeout=240)


def _plot_titles(at) -> list[str]:
    return [json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", "") for c in at.get("plotly_chart")]


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
    from app.quantities import interval_columns

    frame = at.dataframe[0].value
    assert frame.columns[:2].tolist() == ["rank", "formula"]
    # the headers the other pages use, never the schema's keys
    assert not [c for c in frame.columns if c.endswith(("_mean", "_lower", "_upper", "_std")) or c.startswith(("nearest_", "p_"))]
    assert {"PCE (%)", *interval_columns("PCE", "%", 0.9), "P(beats next)", "nearest measured composition"} <= set(frame.columns)
    assert frame["band gap, measured (eV)"].between(1.50, 1.60).all()
    assert (frame["status"] == "ranked").all() and frame["rank"].tolist() == list(range(1, len(frame) + 1))
    for other in at.dataframe[1:]:  # proposals outside a stage's domain: a table of their own, without ranks
        assert "rank" not in other.value.columns and (other.value["status"] != "ranked").all()
    labels = [b.label for b in at.button]
    assert "Predict it" in labels and "Explain it" in labels
    first = frame.iloc[0]
    _button(at, "Predict it").click().run()  # opens Predict on the proposal with the stack the design used
    assert not at.exception, exceptions(at)
    assert at.session_state["nae.choice.ETL_stack_sequence"] == first["ETL stack"]
    assert at.session_state["nae.choice.HTL_stack_sequence"] == first["HTL stack"]


def test_the_design_selector_shows_the_status_a_run_ends_with(design_env):
    from nestedae_core.jobs import JobManager

    at = open_app(PAGE)
    owner = at.session_state["nae.jobs.identity"]
    job = _run_design(owner, (1.50, 1.60), evals=20, executor=Observer())  # queued: nobody runs it yet
    at.run()
    assert not at.exception, exceptions(at)
    label = lambda: at.selectbox(key="design.selected").options[0]  # noqa: E731
    assert "(queued," in label()
    ThreadExecutor().submit(str(JobManager(executor=Observer()).db_path), job)
    assert JobManager(executor=Observer()).wait(job, timeout=240).status == "done"
    at.run()
    assert "(done," in label() and "queued" not in label()
    assert "proposals in domain" in texts(at)


def test_a_second_objective_is_a_pareto_front(design_env):
    from nestedae_core.design import Objective
    from nestedae_core.jobs import JobManager

    at = open_app(PAGE)
    seconds = at.selectbox(key="design.second").options
    assert seconds[0].startswith("none") and "lowest decomposition energy (most stable)" in seconds
    at.selectbox(key="design.second").set_value("lowest decomposition energy (most stable)")
    at.number_input(key="design.budget").set_value(20)
    _button(at, "Run design").click().run()
    assert not at.exception, exceptions(at)
    owner = at.session_state["nae.jobs.identity"]
    queued = JobManager(executor=Observer()).jobs(owner, kind="design")
    objectives = queued[0].payload["problem"]["objectives"]
    assert [(o["quantity"], o["goal"]) for o in objectives] == [("pce_percent", "maximize"), ("decomposition_eV_per_fu", "minimize")]
    rec = _run_design(owner, (1.50, 1.70), evals=40, second=Objective(quantity="decomposition_eV_per_fu", goal="minimize"))
    assert rec.status == "done", rec.error
    at.run()
    at.selectbox(key="design.selected").set_value(rec.id).run()
    assert not at.exception, exceptions(at)
    titles = _plot_titles(at)
    assert any(t.startswith("Pareto front: maximize pce_percent against minimize decomposition_eV_per_fu") for t in titles), titles
    front = [tr for c in at.get("plotly_chart") for tr in json.loads(c.proto.spec)["data"] if str(tr.get("name", "")).startswith("Pareto front")]
    assert front and len(front[0]["x"]) >= 1
    assert "decomposition energy (eV/f.u.)" in at.dataframe[0].value.columns  # the second objective's quantity is in the table


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


def test_a_running_two_objective_design_draws_its_front_so_far(design_env):
    from pathlib import Path

    from nestedae_core.design import DesignProblem, Objective, run_design
    from nestedae_core.estimator import NestedAEModel
    from nestedae_core.jobs import JobManager

    at = open_app(PAGE)
    owner = at.session_state["nae.jobs.identity"]
    second = Objective(quantity="bandgap_eV", goal="target", target=1.55)
    job = _run_design(owner, (1.50, 1.60), evals=20, second=second, executor=Observer())  # queued: the page polls it
    at.run()
    assert not at.exception, exceptions(at)
    assert "The Pareto front appears here" in texts(at)
    rec = JobManager(executor=Observer()).get(job)
    problem = DesignProblem.model_validate(rec.payload["problem"])
    rows: list = []
    run_design(NestedAEModel.load().model_, problem, sampler="tpe", on_evaluated=lambda r: rows.append(r))
    import pandas as pd

    pd.concat(rows, ignore_index=True).to_csv(Path(rec.work_dir) / "live.csv", index=False)  # what the running job writes
    at.run()
    assert not at.exception, exceptions(at)
    assert any(t.startswith("Pareto front so far") for t in _plot_titles(at)), _plot_titles(at)
