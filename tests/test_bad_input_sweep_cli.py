"""Bad input to ``nestedae sweep``: one line on stderr, exit code 2, and every argument checked before any work.

"Before any work" is checked by the job store: it must not even be created (no
trial can have run), and the models folder is unchanged.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_checks import one_line_error as _one_line_error
from cli_checks import run

from nestedae_core.cli import main

pytestmark = pytest.mark.training


def one_line_error(rc: int, err: str, *needles: str) -> str:
    """Exit code 2 (an input error) and one error line holding every needle."""
    return _one_line_error(rc, err, *needles, code=2)

BASE = ("sweep", "--preset", "synthetic", "--trials", "1", "--epochs", "2", "--folds", "2")








@pytest.fixture
def env(tmp_path, monkeypatch):
    """A job store path and a models folder of this test (with one saved model folder 'taken'); no other setting."""
    models = tmp_path / "models"
    (models / "taken").mkdir(parents=True)
    (models / "taken" / "manifest.json").write_text("{}")
    monkeypatch.setenv("NESTEDAE_MODELS_DIR", str(models))
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    for var in ("NESTEDAE_DASK_SCHEDULER", "NESTEDAE_READ_ONLY", "NESTEDAE_MAX_RUNNING", "NESTEDAE_MAX_JOBS",
                "NESTEDAE_STORE_TIMEOUT", "NESTEDAE_MAX_EPOCH_FOLDS", "NESTEDAE_MAX_PARAMETERS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def nothing_done(tmp_path: Path) -> None:
    assert not (tmp_path / "jobs.sqlite").exists()  # the job store was not even opened: no trial ran
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["taken"]


@pytest.mark.parametrize("extra, needles", [
    (("--trials", "501"), ("--trials 501", "500")),
    (("--parallel", "65"), ("--parallel 65", "64")),
    (("--epochs", "1000000000"), ("--epochs 1000000000", "100000")),
    (("--epochs", "1e9"), ("--epochs", "1e9")),
    (("--folds", "1000"), ("--folds 1000", "20")),
])
def test_out_of_range_values_are_one_line(capsys, env, extra, needles):
    rc, out, err = run(capsys, *BASE, *extra)
    one_line_error(rc, err, *needles)
    nothing_done(env)


def test_trials_out_of_range_when_resuming(capsys, env):
    rc, out, err = run(capsys, "sweep", "--study", "old", "--trials", "501")
    one_line_error(rc, err, "--trials 501")
    nothing_done(env)


@pytest.mark.parametrize("kind", ["dev-zero", "folder", "huge", "binary", "missing", "not-a-space"])
def test_bad_search_space_files(capsys, env, kind):
    target = {
        "dev-zero": Path("/dev/zero"),
        "folder": env,
        "huge": env / "huge.json",
        "binary": env / "binary.json",
        "missing": env / "missing.json",
        "not-a-space": env / "space.json",
    }[kind]
    if kind == "huge":
        target.write_text('{"params": [' + " " * 2_000_000 + "]}")
    elif kind == "binary":
        target.write_bytes(b"\xff\xfe\x00garbage")
    elif kind == "not-a-space":
        target.write_text('{"params": [{"name": "x", "field": "nope", "low": 1, "high": 2}]}')
    t0 = time.monotonic()
    rc, out, err = run(capsys, *BASE, "--space", target)
    assert time.monotonic() - t0 < 30
    one_line_error(rc, err, "--space", str(target))
    nothing_done(env)


@pytest.mark.parametrize("extra, needles", [
    (("--json", "/no/such/folder/out.json"), ("--json", "/no/such/folder", "does not exist")),
    (("--json", "{tmp}"), ("--json", "directory")),
    (("--save", "../escape"), ("--save", "not allowed")),
    (("--save", "measured-default"), ("--save", "built-in")),
    (("--save", "taken"), ("--save", "exists already")),
    (("--study", "bad/name"), ("study name", "not allowed")),
    (("--storage", "nonsense"), ("--storage", "database URL")),
])
def test_outputs_and_names_are_checked_before_any_trial(capsys, env, extra, needles):
    extra = tuple(a.replace("{tmp}", str(env)) for a in extra)
    rc, out, err = run(capsys, *BASE, *extra)
    one_line_error(rc, err, *needles)
    nothing_done(env)


def test_unreachable_scheduler_is_one_line_and_the_command_ends_quickly(env):
    """A scheduler address that answers nothing: one line after the 5 s connect timeout, no hang at exit (a hang
    fails the run's 120 s limit; the old hang also ended in a traceback at exit, checked below). No wall-clock
    threshold: on a loaded machine the start-up alone varies several-fold."""
    environ = {**os.environ, "NESTEDAE_DASK_SCHEDULER": "tcp://127.0.0.1:9", "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, "-m", "nestedae_core", *BASE], capture_output=True, text=True, env=environ, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in lines[0], p.stderr
    assert "NESTEDAE_DASK_SCHEDULER" in lines[0] and "Traceback" not in p.stderr
