"""Nothing of the user's is ever lost (issue 20, "Files lost").

A folder is a model bundle only if its manifest says so and every file in it is one
the manifest lists; ``--overwrite`` replaces exactly those files and refuses, naming
them, when anything else is there; start-up recovery removes only what the job
system created and recorded; an output path that resolves to an input is refused,
whatever its spelling. Each case failed (files deleted or replaced) before the fix.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from cli_checks import one_line_error, run, snapshot

from nestedae_core import store
from nestedae_core.cli import main
from nestedae_core.errors import BundleError
from nestedae_core.jobs import JobManager, load_settings
from nestedae_core.jobs.ownership import delete_model

pytestmark = pytest.mark.training












@pytest.fixture
def fake_training(tiny_synthetic, monkeypatch):
    """``nestedae train`` without the training: cross_validate returns the session's tiny run."""
    import nestedae_core.train.cross_validation as cv

    calls = []
    monkeypatch.setattr(cv, "cross_validate", lambda spec, **kw: calls.append(spec) or tiny_synthetic)
    return calls


@pytest.fixture(scope="module")
def saved(tiny_synthetic, tmp_path_factory):
    return store.save_bundle(tiny_synthetic, tmp_path_factory.mktemp("kept") / "syn")


TRAIN = ("train", "--preset", "synthetic", "--no-progress")


# --------------------------------------------------------------------------- what a bundle is


def test_a_config_json_does_not_make_a_folder_a_bundle(tmp_path, saved):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "config.json").write_text("{}")
    assert store.bundle_files(proj) is None
    assert store.bundle_files(saved) == {*json.loads((saved / "manifest.json").read_text())["sha256"], "manifest.json"}
    assert json.loads((saved / "manifest.json").read_text())["kind"] == store.MANIFEST_KIND
    assert store.foreign_entries(saved) == []
    other = tmp_path / "web"  # another program's manifest.json
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"name": "app", "sha256": {"config.json": "x", "weights.safetensors": "y"}}))
    assert store.bundle_files(other) is None


def test_train_overwrite_on_a_project_folder_holding_its_config_deletes_nothing(capsys, tmp_path, fake_training):
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "config.json").write_text(json.dumps({"seed": 3}))
    (proj / "notes.txt").write_text("notes")
    (proj / "data.csv").write_text("a,b\n1,2\n")
    (proj / "sub" / "thesis.tex").write_text("\\section{x}")
    before = snapshot(tmp_path)
    rc, _, err = run(capsys, *TRAIN, "--config", proj / "config.json", "--out", proj, "--overwrite")
    one_line_error(rc, err, "not a model bundle", str(proj))
    assert snapshot(tmp_path) == before
    assert fake_training == []  # refused before any training


def test_train_overwrite_on_a_home_like_folder_deletes_nothing(capsys, tmp_path, fake_training):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export PATH=...")
    (home / "config.json").write_text("{}")
    before = snapshot(tmp_path)
    rc, _, err = run(capsys, *TRAIN, "--out", home, "--overwrite")
    one_line_error(rc, err, "not a model bundle")
    assert snapshot(tmp_path) == before


def test_overwrite_refuses_a_bundle_holding_a_users_note_and_names_it(capsys, tmp_path, saved, fake_training):
    out = tmp_path / "model"
    shutil.copytree(saved, out)
    (out / "MY_NOTES.txt").write_text("do not lose me")
    (out / "plots").mkdir()
    before = snapshot(tmp_path)
    rc, _, err = run(capsys, *TRAIN, "--out", out, "--overwrite")
    one_line_error(rc, err, "MY_NOTES.txt", "plots", "move them out first")
    assert snapshot(tmp_path) == before
    with pytest.raises(BundleError, match="MY_NOTES.txt"):
        store.check_save_target(out, overwrite=True)


def test_overwrite_replaces_exactly_the_bundles_files(tmp_path, tiny_synthetic, saved):
    out = tmp_path / "model"
    shutil.copytree(saved, out)
    inode = (out / "weights.safetensors").stat().st_ino
    store.save_bundle(tiny_synthetic, out, overwrite=True)
    assert (out / "weights.safetensors").stat().st_ino != inode
    assert store.foreign_entries(out) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_removing_a_bundle_folder_keeps_what_the_manifest_does_not_list(tmp_path, saved):
    out = tmp_path / "model"
    shutil.copytree(saved, out)
    (out / "keep.txt").write_text("mine")
    left = store.remove_bundle_folder(out)
    assert left == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert not (out / "weights.safetensors").exists()


def test_deleting_a_saved_model_holding_a_users_file_is_refused(tmp_path, saved):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(saved, models / "mine")
    (models / "mine" / "notes.txt").write_text("mine")
    settings = load_settings({"NESTEDAE_ADMINS": "admin@example.org"})
    m = JobManager(tmp_path / "jobs.sqlite", settings=settings, executor=_NoExecutor(), models_dir=models)
    before = snapshot(models)
    with pytest.raises(BundleError, match="notes.txt"):
        delete_model(m.store, settings, "mine", identity="admin@example.org", models_dir=models)
    assert snapshot(models) == before
    (models / "mine" / "notes.txt").unlink()
    delete_model(m.store, settings, "mine", identity="admin@example.org", models_dir=models)
    assert list(models.iterdir()) == []


# --------------------------------------------------------------------------- start-up recovery


class _NoExecutor:
    def submit(self, db, job_id):
        pass

    def shutdown(self):
        pass


def test_recovery_never_removes_a_users_files_in_the_work_folder(tmp_path, monkeypatch):
    x = tmp_path / "x"
    work = x / "project-work"
    (work / "sub").mkdir(parents=True)
    (work / "figures").mkdir()
    (work / "sub" / "data.csv").write_text("a,b\n")
    (work / "figures" / "fig1.png").write_bytes(b"\x89PNG")
    (work / "0123456789ab").mkdir()  # shaped like a job id, but no job of this store
    (work / "0123456789ab" / "keep.txt").write_text("k")
    before = snapshot(x)
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(x / "project.sqlite"))
    settings = load_settings()
    for _ in range(2):  # the first start creates the store, the second recovers an existing one
        m = JobManager(settings=settings, executor=_NoExecutor(), models_dir=tmp_path / "models")
        assert m.work_root == work
    after = snapshot(x)
    assert {k: v for k, v in after.items() if not k.startswith("project.sqlite")} == before


def test_recovery_removes_the_work_folder_of_a_failed_job_it_recorded(tmp_path):
    from nestedae_core.jobs import synthetic_tables, train_payload
    from nestedae_core.perovskite.presets import preset

    settings = load_settings({}, max_jobs_per_owner=5)
    m = JobManager(tmp_path / "jobs.sqlite", settings=settings, executor=_NoExecutor(), models_dir=tmp_path / "models")
    payload = train_payload(preset("synthetic", epochs=2, folds=2), tables=synthetic_tables(n_materials=40, n_devices=60), device="cpu")
    job = m.submit("train", payload, owner="a", name="will-fail")
    assert m.store.finish(job, "failed", error="boom", from_statuses=("queued",))
    folder = Path(m.get(job).work_dir)
    assert folder.is_dir()
    JobManager(tmp_path / "jobs.sqlite", settings=settings, executor=_NoExecutor(), models_dir=tmp_path / "models")
    assert not folder.exists()


# --------------------------------------------------------------------------- output = input


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "X.csv"
    p.write_text("formula,note\nMAPbI3,mine\nFAPbI3,also mine\n")
    return p


@pytest.mark.parametrize("command", ["predict", "explain"])
@pytest.mark.parametrize("spelling", ["X.csv", "./X.csv", "absolute", "link", "hardlink"])
def test_batch_output_that_is_its_input_is_refused(capsys, table, command, spelling, default_model):
    out = {"X.csv": "X.csv", "./X.csv": "./X.csv", "absolute": str(table)}.get(spelling)
    if spelling == "link":
        os.symlink(table, table.with_name("L.csv"))
        out = "L.csv"
    if spelling == "hardlink":
        os.link(table, table.with_name("H.csv"))
        out = "H.csv"
    before = table.read_bytes()
    rc, _, err = run(capsys, command, "--csv", "X.csv", "--out", out, "--model", default_model)
    one_line_error(rc, err, "input file", "another file name")
    assert table.read_bytes() == before
    assert sorted(p.name for p in table.parent.iterdir() if p.name.startswith(".")) == []


def test_featurize_output_that_is_its_input_is_refused(capsys, table):
    before = table.read_bytes()
    rc, _, err = run(capsys, "featurize", "--csv", "X.csv", "--formula-column", "formula", "--out", str(table))
    one_line_error(rc, err, "input file")
    assert table.read_bytes() == before
