"""Bad-input matrix of the ``nestedae`` command (issue 9).

Every case runs the real entry point and checks: a non-zero exit code, exactly one
line on stderr naming the problem, no traceback, and the file system as it was
(files kept, nothing half-written, no temporary leftovers).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_checks import one_line_error, run, snapshot

from nestedae_core import store
from nestedae_core.cli import main

pytestmark = pytest.mark.unit











@pytest.fixture
def models(tmp_path, monkeypatch):
    d = tmp_path / "models"
    d.mkdir()
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(d))
    return d


@pytest.fixture(scope="module")
def saved(tiny_synthetic, tmp_path_factory):
    return store.save_bundle(tiny_synthetic, tmp_path_factory.mktemp("cli-bad") / "syn")


@pytest.fixture
def fake_training(tiny_synthetic, monkeypatch):
    """``nestedae train --preset synthetic`` without the training: cross_validate returns the session's tiny run."""
    import nestedae_core.train.cross_validation as cv

    calls = []

    def fake(spec, **kwargs):
        calls.append(spec)
        return tiny_synthetic

    monkeypatch.setattr(cv, "cross_validate", fake)
    return calls


TRAIN = ("train", "--preset", "synthetic", "--no-progress")


# --------------------------------------------------------------------------- train --out


def test_train_out_refuses_a_folder_that_is_not_a_bundle(capsys, tmp_path, fake_training):
    out = tmp_path / "work"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("a,b\n")
    before = snapshot(tmp_path)
    for extra in ((), ("--overwrite",)):
        rc, _, err = run(capsys, *TRAIN, "--out", out, *extra)
        one_line_error(rc, err, "is a folder that is not a model bundle", str(out))
    assert snapshot(tmp_path) == before
    assert fake_training == []  # refused before training


def test_train_out_pointed_at_the_models_dir_erases_nothing(capsys, models, saved, fake_training):
    shutil.copytree(saved, models / "a")
    shutil.copytree(saved, models / "b")
    before = snapshot(models)
    rc, _, err = run(capsys, *TRAIN, "--out", models, "--overwrite")
    one_line_error(rc, err, "not a model bundle")
    assert snapshot(models) == before


def test_train_out_replaces_a_bundle_only_with_overwrite(capsys, tmp_path, saved, fake_training):
    out = tmp_path / "model"
    shutil.copytree(saved, out)
    (out / "stray.txt").write_text("x")
    before = snapshot(tmp_path)
    rc, _, err = run(capsys, *TRAIN, "--out", out)
    one_line_error(rc, err, "already exists", "--overwrite")
    assert snapshot(tmp_path) == before
    rc, _, err = run(capsys, *TRAIN, "--out", out, "--overwrite")  # stray.txt is not the bundle's: kept, refused
    one_line_error(rc, err, "stray.txt", "move them out first")
    assert snapshot(tmp_path) == before
    (out / "stray.txt").unlink()
    rc, printed, err = run(capsys, *TRAIN, "--out", out, "--overwrite")
    assert rc == 0, err
    assert printed.endswith(f"saved model bundle to {out}\n")
    assert store.load_bundle(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_train_out_into_a_new_or_empty_folder(capsys, tmp_path, fake_training):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        rc, _, err = run(capsys, *TRAIN, "--out", out)
        assert rc == 0, err
        store.load_bundle(out)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "file", "device"])
def test_train_out_never_renames_over_special_files(capsys, tmp_path, kind, fake_training):
    target = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    elif kind == "file":
        target.write_text("data")
    else:
        target = Path("/dev/null")
    before = snapshot(tmp_path)
    rc, _, err = run(capsys, *TRAIN, "--out", target, "--overwrite")
    one_line_error(rc, err, str(target), "refusing to replace it")
    assert snapshot(tmp_path) == before
    if kind == "device":
        assert Path("/dev/null").is_char_device()


def test_train_out_reports_a_full_disk_and_a_read_only_folder(capsys, tmp_path, monkeypatch, fake_training):
    out = tmp_path / "model"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(store.saving, "_write_json", full)
        rc, _, err = run(capsys, *TRAIN, "--out", out)
    one_line_error(rc, err, "the disk is full", str(out))
    assert list(tmp_path.iterdir()) == []
    real_mkdir = os.mkdir

    def ro(path, *a, **k):
        if ".saving" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(store.saving.os, "mkdir", ro)
        rc, _, err = run(capsys, *TRAIN, "--out", out)
    one_line_error(rc, err, "read-only file system")
    assert list(tmp_path.iterdir()) == []


def test_train_out_refuses_a_shipped_model(capsys, fake_training):
    target = store.shipped_bundle_path("paper-default")
    before = snapshot(target)
    rc, _, err = run(capsys, *TRAIN, "--out", target, "--overwrite")
    one_line_error(rc, err, "shipped with nestedae_core")
    assert snapshot(target) == before


# --------------------------------------------------------------------------- --data-dir


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--preset", "synthetic", "--out", "{tmp}/m"],
        ["benchmark", "accuracy"],
        ["benchmark", "calibration", "--json", "{tmp}/c.json"],
        ["benchmark", "paper-score"],
        ["benchmark", "speed"],
    ],
    ids=["train", "accuracy", "calibration", "paper-score", "speed"],
)
@pytest.mark.parametrize("where", ["missing", "file", "empty"])
def test_data_dir_that_is_not_a_folder_is_an_error(capsys, tmp_path, argv, where):
    value = {"missing": str(tmp_path / "nonexistent"), "file": str(tmp_path / "f.txt"), "empty": " "}[where]
    (tmp_path / "f.txt").write_text("x")
    before = snapshot(tmp_path)
    rc, out, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv], "--data-dir", value)
    one_line_error(rc, err, "--data-dir")
    assert {"missing": "does not exist", "file": "is not a folder", "empty": "is empty"}[where] in err
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- --config


def _config(tmp_path, kind):
    if kind == "deep-json":
        p = tmp_path / "deep.json"
        p.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "deep-toml":
        p = tmp_path / "deep.toml"
        p.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    elif kind == "deep-below-recursion":
        p = tmp_path / "deep2.json"
        p.write_text('{"stages": ' + "[" * 200 + "]" * 200 + "}")
    elif kind == "latin-1":
        p = tmp_path / "latin.json"
        p.write_bytes('{"name": "café"}'.encode("latin-1"))
    elif kind == "binary":
        p = tmp_path / "bin.toml"
        p.write_bytes(b"\x00\x01\x02\x03name = 1")
    elif kind == "huge":
        p = tmp_path / "huge.json"
        with open(p, "wb") as fh:
            fh.truncate(50_000_000)  # sparse: the size alone must refuse it, unread
    elif kind == "list":
        p = tmp_path / "list.json"
        p.write_text("[1, 2]")
    elif kind == "missing":
        p = tmp_path / "missing.toml"
    elif kind == "folder":
        p = tmp_path / "cfg.json"
        p.mkdir()
    elif kind == "fifo":
        p = tmp_path / "pipe.json"
        os.mkfifo(p)
    return p


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("deep-json", "nested too deeply"),
        ("deep-toml", "nested too deeply"),
        ("deep-below-recursion", "nested more than"),
        ("latin-1", "is not UTF-8 text"),
        ("binary", "is binary"),
        ("huge", "is 50.0 MB"),
        ("list", "must hold a table/object"),
        ("missing", "does not exist"),
        ("folder", "is not a regular file"),
        ("fifo", "is not a regular file"),
    ],
)
def test_bad_config_files(capsys, tmp_path, kind, needle, fake_training):
    cfg = _config(tmp_path, kind)
    before = snapshot(tmp_path)
    rc, _, err = run(capsys, *TRAIN, "--config", cfg, "--out", tmp_path / "m")
    one_line_error(rc, err, needle, str(cfg))
    assert snapshot(tmp_path) == before and fake_training == []


# --------------------------------------------------------------------------- output files


def test_benchmark_json_output_checked_before_the_run(capsys, tmp_path, monkeypatch):
    import nestedae_core.benchmark as bm

    def never(*a, **k):
        raise AssertionError("the benchmark must not start")

    monkeypatch.setattr(bm, "bundle_paper_scoring", never)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "x.json")
    (tmp_path / "dir.json").mkdir()
    before = snapshot(tmp_path)
    for target, needle in [("fifo", "it is a fifo"), ("link", "symbolic link"), ("dir.json", "is a directory"), ("nope/x.json", "does not exist")]:
        rc, _, err = run(capsys, "benchmark", "paper-score", "--json", tmp_path / target)
        one_line_error(rc, err, "--json", needle)
    rc, _, err = run(capsys, "benchmark", "paper-score", "--json", "/dev/null")
    one_line_error(rc, err, "it is a device")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_benchmark_json_full_disk_or_read_only_keeps_the_old_file(capsys, tmp_path, monkeypatch, code):
    import nestedae_core.benchmark as bm
    from nestedae_core import io_safe

    monkeypatch.setattr(bm, "bundle_paper_scoring", lambda *a, **k: {"bundle": "b", "target": "t", "stage": "s", "n": 1, "folds": 1, "split": "random",
                                                                    "mae_rows": 1.0, "fold_mae_rows": [1.0], "batch": 100, "mae_paper_batches": 1.0, "fold_mae_paper_batches": [1.0]})
    out = tmp_path / "r.json"
    out.write_text('{"old": true}')

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io_safe.os, "fsync", fail)
    rc, _, err = run(capsys, "benchmark", "paper-score", "--json", out)
    one_line_error(rc, err, {errno.ENOSPC: "the disk is full", errno.EROFS: "read-only file system"}[code], str(out))
    assert json.loads(out.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_featurize_out_full_disk_leaves_no_partial_file(capsys, tmp_path, monkeypatch):
    from nestedae_core import io_safe

    src = tmp_path / "in.csv"
    src.write_text("formula\nMAPbI3\nCsPbBr3\n")
    out = tmp_path / "out.csv"
    out.write_text("previous")

    def fail(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_safe.os, "fsync", fail)
    rc, _, err = run(capsys, "featurize", "--csv", src, "--formula-column", "formula", "--out", out)
    one_line_error(rc, err, "the disk is full")
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_unexpected_os_error_is_one_line(capsys, monkeypatch):
    import nestedae_core.cli.data_cmd as data_cmd

    def boom(args):
        raise OSError(errno.EIO, "Input/output error", "/some/file")

    monkeypatch.setattr(data_cmd, "cmd_list", boom)
    monkeypatch.setattr(data_cmd, "cmd_path", boom)
    rc, _, err = run(capsys, "data", "path", "mhp-pbe")
    one_line_error(rc, err, "/some/file", "Input/output error")


# --------------------------------------------------------------------------- --model and bundles


def _break(bundle: Path, name: str, text: str) -> None:
    (bundle / name).write_text(text)
    m = json.loads((bundle / "manifest.json").read_text())
    if isinstance(m, dict):
        m["sha256"][name] = store.layout._sha256(bundle / name)
        (bundle / "manifest.json").write_text(json.dumps(m))


def test_model_by_saved_name_and_unknown_names(capsys, models, saved):
    shutil.copytree(store.shipped_bundle_path("paper-default"), models / "mine")
    shutil.copytree(saved, models / "bad")
    (models / "bad" / "metrics.json").write_text("[]")
    rc, out, err = run(capsys, "predict", "MAPbI3", "--model", "mine", "--json")
    assert rc == 0, err
    assert json.loads(out)
    rc, _, err = run(capsys, "predict", "MAPbI3", "--model", "nosuch")
    line = one_line_error(rc, err, "no model named 'nosuch'", "measured-default", "paper-default", "mine", "bad (broken)")
    assert str(models) in line
    rc, _, err = run(capsys, "predict", "MAPbI3", "--model", "bad")
    one_line_error(rc, err, "metrics.json")
    rc, _, err = run(capsys, "explain", "MAPbI3", "--model", str(models / "nothere"))
    one_line_error(rc, err, "no model bundle at")
    (models / "afile").write_text("x")
    rc, _, err = run(capsys, "predict", "MAPbI3", "--model", str(models / "afile"))
    one_line_error(rc, err, "is not a folder")


BAD_BUNDLES = {
    "manifest-list": (lambda b: (b / "manifest.json").write_text("[]"), "manifest.json is malformed"),
    "manifest-string": (lambda b: (b / "manifest.json").write_text('"sha256"'), "manifest.json is malformed"),
    "symlink-out": (lambda b: ((b / "record.json").unlink(), (b / "record.json").symlink_to("/etc/hostname")), "record.json is a symbolic link"),
    "nan-preprocessing": (lambda b: _break(b, "preprocessing.json", (b / "preprocessing.json").read_text().replace("[", "[NaN, ", 1)), "NaN or infinite"),
    "inf-preprocessing": (lambda b: _break(b, "preprocessing.json", (b / "preprocessing.json").read_text().replace("[", "[1e999, ", 1)), "NaN or infinite"),
    "metrics-list": (lambda b: _break(b, "metrics.json", "[]"), "metrics.json must hold an object"),
    "config-list": (lambda b: _break(b, "config.json", "[]"), "config.json must hold an object"),
    "missing-weights": (lambda b: (b / "weights.safetensors").unlink(), "weights.safetensors is missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
@pytest.mark.parametrize("command", [["predict", "MAPbI3"], ["predict", "MAPbI3", "--json"], ["explain", "MAPbI3", "--json", "--method", "gradient"]])
def test_bad_bundles_are_refused_in_one_line(capsys, tmp_path, saved, case, command):
    b = tmp_path / "b"
    shutil.copytree(saved, b)
    damage, needle = BAD_BUNDLES[case]
    damage(b)
    before = snapshot(tmp_path)
    rc, out, err = run(capsys, *command, "--model", b)
    one_line_error(rc, err, needle)
    assert "nan" not in out.lower()
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- the console script


def test_console_script_prints_one_line_without_traceback(tmp_path):
    notes = tmp_path / "work"
    notes.mkdir()
    (notes / "notes.txt").write_text("keep")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cases = [
        ["train", "--out", str(notes), "--overwrite"],
        ["train", "--out", str(tmp_path / "m"), "--data-dir", "/nonexistent"],
        ["predict", "MAPbI3", "--model", "no-such-model"],
    ]
    for argv in cases:
        p = subprocess.run([sys.executable, "-m", "nestedae_core", *argv], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert (notes / "notes.txt").read_text() == "keep"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["work"]
