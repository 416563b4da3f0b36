"""Sweeps: the search space as data, fixed folds, trials as jobs, the study in SQLite, the CLI."""
from __future__ import annotations

import json

import pytest

from nestedae_core.errors import ConfigError
from nestedae_core.perovskite.presets import preset
from nestedae_core.sweep import Objective, ParamSpec, SearchSpace, cross_validate_on_folds, default_space

pytestmark = pytest.mark.training


def tiny_base(epochs: int = 20):
    return preset("synthetic", epochs=epochs, folds=3, split="grouped")


# ---------------------------------------------------------------------- search space


def test_default_space_covers_every_stage_and_applies():
    base = tiny_base()
    space = default_space(base)
    names = {p.name for p in space.params}
    assert {"materials.latent_dim", "devices.latent_dim", "materials.head_width", "lr", "epochs_scale", "seed"} <= names
    values = {p.name: p.largest for p in space.params}
    values["epochs_scale"] = 0.5
    values["seed"] = 7
    spec = space.apply(base, values)
    assert spec.seed == 7
    assert [s.epochs for s in spec.stages] == [10, 10]
    assert spec.stages[0].latent_dim == 12 and spec.stages[0].head_hidden == [256]
    assert spec.folds == 3 and spec.split == "grouped"
    assert base.seed == 0 and base.stages[0].latent_dim == 6  # the base is unchanged


def test_space_round_trips_as_json():
    space = default_space(tiny_base())
    again = SearchSpace.from_json(space.model_dump_json())
    assert again == space
    assert any(row["scale"] == "log" for row in space.describe())


@pytest.mark.parametrize(
    "param, message",
    [
        (dict(name="a", field="lr", low=0.1, high=0.01), "low must not exceed high"),
        (dict(name="a", field="lr", low=0.0, high=0.1, log=True), "log-scale range needs low > 0"),
        (dict(name="a", field="latent_dim", low=1.5, high=4), "whole numbers"),
        (dict(name="a", field="latent_dim"), "give low and high"),
        (dict(name="a", field="seed", stage="materials", low=0, high=3), "belongs to the chain"),
        (dict(name="a", field="epochs_scale", low=0, high=1), "must be positive"),
        (dict(name="a", field="head_width", choices=[]), "choices must not be empty"),
    ],
)
def test_bad_parameters_are_refused(param, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace.from_json(json.dumps({"params": [param]}))


def test_space_refuses_unknown_fields_duplicates_and_stages():
    with pytest.raises(ConfigError, match="invalid search space"):
        SearchSpace.from_json('{"params": [{"name": "a", "field": "width", "low": 1, "high": 2}]}')
    with pytest.raises(ConfigError, match="unique"):
        SearchSpace.from_json(json.dumps({"params": [dict(name="a", field="lr", low=0.01, high=0.1)] * 2}))
    space = SearchSpace(params=[ParamSpec(name="x", field="latent_dim", stage="film", low=2, high=4)])
    with pytest.raises(ConfigError, match="names stage 'film'; stages: materials, devices"):
        space.check(tiny_base())


def test_objective_defaults_to_the_last_stage_first_target():
    base = tiny_base()
    assert Objective.for_spec(base) == Objective("devices", "y2")
    assert Objective.for_spec(base, "materials").target == "y1"
    with pytest.raises(ConfigError, match="no stage 'film'"):
        Objective.for_spec(base, "film")
    with pytest.raises(ConfigError, match="has no target 'pce'"):
        Objective.for_spec(base, "devices", "pce")


def test_folds_do_not_follow_the_training_seed():
    base = tiny_base(epochs=5)
    a = cross_validate_on_folds(base.with_updates(seed=1), fold_seed=3, device="cpu")
    b = cross_validate_on_folds(base.with_updates(seed=2), fold_seed=3, device="cpu")
    for stage in ("materials", "devices"):
        assert (a.folds[stage] == b.folds[stage]).all()
    assert a.model.record["seed"] == 1 and a.model.record["fold_seed"] == 3
    c = cross_validate_on_folds(base.with_updates(seed=1), fold_seed=4, device="cpu")
    assert not (a.folds["devices"] == c.folds["devices"]).all()
    obj = Objective.for_spec(base)
    assert obj.value(a) == pytest.approx(sum(obj.fold_values(a)) / 3)


# ---------------------------------------------------------------------- trials as jobs


class ThreadExecutor:
    """The executor protocol with ``run_job`` in a thread of this process (fast; the real store and kinds)."""

    def __init__(self) -> None:
        import threading

        self.threads: list[threading.Thread] = []

    def submit(self, db_path: str, job_id: str) -> None:
        import threading

        from nestedae_core.jobs.worker import run_job

        t = threading.Thread(target=run_job, args=(db_path, job_id), daemon=True)
        t.start()
        self.threads.append(t)

    def shutdown(self) -> None:
        for t in self.threads:
            t.join(60)


@pytest.fixture
def jobs_env(tmp_path, monkeypatch):
    """Models folder and job store in tmp_path; returns a factory of JobManagers (shut down at the end)."""
    from nestedae_core.jobs import JobManager, load_settings

    monkeypatch.setenv("NESTEDAE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_READ_ONLY", "NESTEDAE_DASK_SCHEDULER", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS"):
        monkeypatch.delenv(var, raising=False)
    made = []

    def make(executor=None, **settings):
        m = JobManager(settings=load_settings(**settings), executor=executor if executor is not None else ThreadExecutor())
        made.append(m)
        return m

    yield make
    for m in made:
        m.shutdown()


def tiny_config(n_trials: int = 2, **kw):
    from nestedae_core.sweep import SweepConfig

    return SweepConfig(preset="synthetic", n_trials=n_trials, epochs=kw.pop("epochs", 10), folds=3, **kw)


def test_two_trial_sweep_runs_as_jobs_persists_and_resumes(jobs_env, tmp_path):
    import optuna

    from nestedae_core import store
    from nestedae_core.sweep import Sweep

    manager = jobs_env()
    sweep = Sweep.create(tiny_config(2), manager, owner="alice", study_name="tiny")
    assert sweep.run(poll_s=0.1, timeout=300)
    rows = sweep.rows()
    assert [r["state"] for r in rows] == ["complete", "complete"]
    jobs = manager.jobs("alice", kind="sweep-trial")
    assert len(jobs) == 2 and all(j.status == "done" for j in jobs)
    by_id = {j.id: j for j in jobs}
    for r in rows:  # the study's value is the job's objective value; its seed is recorded
        assert r["value"] == pytest.approx(by_id[r["job"]].result["value"])
        assert r["seed"] == r["params"]["seed"] == by_id[r["job"]].result["seed"]
        assert by_id[r["job"]].result["fold_seed"] == 0
    best = sweep.best()
    assert best["value"] == min(r["value"] for r in rows)

    # the study lives in the job store's SQLite file, and a new process picks it up
    assert (tmp_path / "jobs.sqlite").is_file()
    names = optuna.study.get_all_study_names(storage=f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    assert "tiny" in names
    again = Sweep.open("tiny", jobs_env(), owner="alice", n_trials=3)
    assert again.counts()["complete"] == 2
    assert again.run(poll_s=0.1, timeout=300)
    assert again.counts()["complete"] == 3 and len(manager.jobs("alice", kind="sweep-trial")) == 3

    # the best trial becomes a saved model, without retraining
    path = again.save_best("tiny-best")
    model = store.load_bundle(path)
    assert model.record["fold_seed"] == 0 and model.record["seed"] == again.best()["seed"]
    assert model.metrics["devices"]["y2"]["mae"] == pytest.approx(again.best()["value"])


def test_limits_and_read_only_refuse_a_sweep(jobs_env):
    from nestedae_core.jobs import LimitError
    from nestedae_core.sweep import Sweep

    with pytest.raises(LimitError, match="NESTEDAE_MAX_EPOCH_FOLDS is 50") as err:
        Sweep.create(tiny_config(2), jobs_env(max_epoch_folds=50), owner="bob")
    assert err.value.setting == "NESTEDAE_MAX_EPOCH_FOLDS" and "largest trial" in str(err.value)
    with pytest.raises(LimitError, match="NESTEDAE_MAX_PARAMETERS"):
        Sweep.create(tiny_config(2), jobs_env(max_parameters=1000), owner="bob")
    with pytest.raises(LimitError, match="read-only"):
        Sweep.create(tiny_config(2), jobs_env(read_only=True), owner="bob")
    with pytest.raises(ValueError, match="less than or equal to 500"):
        tiny_config(501)


def test_cancel_stops_the_running_trials(jobs_env):
    from nestedae_core.sweep import Sweep

    manager = jobs_env()
    sweep = Sweep.create(tiny_config(4, epochs=2000), manager, owner="carol", study_name="long")
    assert not sweep.step()
    assert sweep.counts()["running"] == 2  # parallel=2 trials at once, 2 more wait for a slot
    assert sweep.cancel() == 2
    assert sweep.run(poll_s=0.1, timeout=120)
    assert {j.status for j in manager.jobs("carol")} == {"cancelled"}
    assert sweep.counts()["complete"] == 0 and len(sweep.rows()) == 2  # no new trials after a cancel


def test_trial_without_a_job_is_failed_on_resume(jobs_env):
    from nestedae_core.sweep import Sweep

    manager = jobs_env()
    sweep = Sweep.create(tiny_config(1), manager, owner="dave", study_name="orphan")
    sweep.study.ask()  # asked, then its orchestrator died before submitting it
    again = Sweep.open("orphan", manager, owner="dave")
    assert again.run(poll_s=0.1, timeout=300)
    states = [r["state"] for r in again.rows()]
    assert states == ["fail", "complete"]


# ---------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "nope", "--trials", "2"], "unknown preset 'nope'"),
        (["--preset", "synthetic", "--trials", "0"], "a sweep needs at least 1 trial"),
        (["--preset", "synthetic", "--trials", "-3"], "a sweep needs at least 1 trial"),
        (["--preset", "synthetic", "--trials", "2", "--storage", "nonsense"], "not a database URL"),
        (["--preset", "synthetic", "--trials", "2", "--storage", "foo://x"], "cannot open the sweep storage 'foo://x'"),
        (["--preset", "synthetic", "--trials", "2", "--storage", "postgresql://u:pw@127.0.0.1:1/db"], "u:***@127.0.0.1"),
        (["--study", "nosuch"], "give --preset NAME"),
        (["--preset", "synthetic", "--stage", "film"], "no stage 'film'"),
    ],
)
def test_cli_errors_are_one_line(jobs_env, capsys, argv, message):
    from nestedae_core.cli import main

    try:
        code = main(["sweep", *argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "pw@" not in err



def test_an_interrupted_trial_is_run_again_on_resume(jobs_env):
    from nestedae_core.sweep import Sweep

    class Idle:  # an executor that never runs its jobs: they stay queued until we interrupt them
        def submit(self, db_path: str, job_id: str) -> None:
            pass

        def shutdown(self) -> None:
            pass

    first = jobs_env(executor=Idle())
    sweep = Sweep.create(tiny_config(1), first, owner="erin", study_name="restart")
    assert not sweep.step()
    (row,) = sweep.rows()
    assert first.store.finish(row["job"], "interrupted", error="interrupted: the server stopped", from_statuses=("queued", "running"))
    again = Sweep.open("restart", jobs_env(), owner="erin")
    assert again.state() == "running"
    assert again.run(poll_s=0.1, timeout=300)
    assert [r["state"] for r in again.rows()] == ["fail", "complete"]
    assert again.rows()[0]["job_status"] == "interrupted"
