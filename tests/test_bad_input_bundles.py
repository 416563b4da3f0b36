"""Bad bundles and unsafe saves: every problem is a clear BundleError, nothing is lost or half-written.

Covers issue 9's bundle and store items: malformed manifests, symbolic links, NaN in
preprocessing and weights, saves that refuse what they must not replace, concurrent
saves of one name (threads and processes), broken folders in the listing, and the
clean-up of the temporary folders killed saves leave.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import threading
import time

import pytest
from safetensors.torch import load_file, save_file

from nestedae_core import store
from nestedae_core.errors import BundleError

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def saved(tiny_paper, tmp_path_factory):
    return store.save_bundle(tiny_paper, tmp_path_factory.mktemp("bad-bundles") / "good")


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _rewrite(path, name, text, *, update_manifest=True):
    (path / name).write_text(text, encoding="utf-8")
    if update_manifest:
        m = json.loads((path / "manifest.json").read_text())
        m["sha256"][name] = store.layout._sha256(path / name)
        (path / "manifest.json").write_text(json.dumps(m))


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("manifest", ["[]", '"sha256"', '{"sha256": []}', '{"sha256": "abc"}', '{"sha256": {"config.json": 5}}', "7"])
def test_malformed_manifest_is_a_bundle_error(saved, tmp_path, manifest):
    b = _copy(saved, tmp_path / "b")
    (b / "manifest.json").write_text(manifest)
    with pytest.raises(BundleError, match="manifest.json is malformed"):
        store.load_bundle(b)
    info = store.bundle_info(b)
    assert info.broken and "manifest.json is malformed" in info.broken


def test_symlink_out_of_the_bundle_is_refused(saved, tmp_path):
    b = _copy(saved, tmp_path / "b")
    outside = tmp_path / "outside.json"
    shutil.copy(b / "metrics.json", outside)
    (b / "metrics.json").unlink()
    (b / "metrics.json").symlink_to(outside)
    with pytest.raises(BundleError, match="metrics.json is a symbolic link"):
        store.load_bundle(b)
    with pytest.raises(BundleError, match="symbolic link"):
        store.load_bundle(b, verify=False)
    # an extra link (not a bundle file) is refused too
    c = _copy(saved, tmp_path / "c")
    (c / "notes").symlink_to("/etc/hostname")
    with pytest.raises(BundleError, match="notes is a symbolic link"):
        store.load_bundle(c)


def test_fifo_in_place_of_a_file_is_refused_without_blocking(saved, tmp_path):
    b = _copy(saved, tmp_path / "b")
    (b / "record.json").unlink()
    os.mkfifo(b / "record.json")
    with pytest.raises(BundleError, match="record.json is not a regular file"):
        store.load_bundle(b, verify=False)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_preprocessing_is_refused(saved, tmp_path, bad):
    b = _copy(saved, tmp_path / "b")
    prep = json.loads((b / "preprocessing.json").read_text())
    prep["stages"][0]["preprocessing"]["cont_mean"][0] = "__X__"
    _rewrite(b, "preprocessing.json", json.dumps(prep).replace('"__X__"', bad))
    with pytest.raises(BundleError, match="preprocessing.json holds NaN or infinite values"):
        store.load_bundle(b)


def test_nan_weights_are_refused(saved, tmp_path):
    b = _copy(saved, tmp_path / "b")
    tensors = load_file(str(b / "weights.safetensors"))
    first = next(iter(tensors))
    tensors[first] = tensors[first].clone()
    tensors[first].view(-1)[0] = float("nan")
    save_file(tensors, str(b / "weights.safetensors"), metadata={"format": "1"})
    m = json.loads((b / "manifest.json").read_text())
    m["sha256"]["weights.safetensors"] = store.layout._sha256(b / "weights.safetensors")
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="weights.safetensors holds NaN or infinite values"):
        store.load_bundle(b)


def test_nan_model_is_never_saved(tiny_paper, tmp_path):
    model = tiny_paper.model
    orig = model.prep[0].cont_mean.copy()
    try:
        model.prep[0].cont_mean[0] = float("nan")
        with pytest.raises(BundleError, match="preprocessing holds NaN or infinite values"):
            store.save_bundle(tiny_paper, tmp_path / "nan")
    finally:
        model.prep[0].cont_mean[:] = orig
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("metrics.json", "[]", "metrics.json must hold an object"),
        ("metrics.json", None, "not UTF-8"),
        ("metrics.json", '{"materials": {"Gap": {"mae": "low"}}}', "MAE of 'materials/Gap' is not a number"),
        ("metrics.json", '{"materials": []}', "entry 'materials' must be an object"),
        ("config.json", "[1, 2]", "config.json must hold an object"),
        ("config.json", '{"format": 1, "spec": "paper"}', "invalid configuration"),
        ("record.json", '"x"', "record.json must hold an object"),
        ("config.json", "[" * 100000 + "]" * 100000, "nested too deeply"),
    ],
)
def test_malformed_files_are_broken_in_the_listing_and_refused_on_load(saved, tmp_path, name, content, reason):
    models = tmp_path / "models"
    models.mkdir()
    b = _copy(saved, models / "bad")
    _copy(saved, models / "ok")
    if content is None:
        (b / name).write_bytes(b"\xff\xfe\x00binary\x9c")
        m = json.loads((b / "manifest.json").read_text())
        m["sha256"][name] = store.layout._sha256(b / name)
        (b / "manifest.json").write_text(json.dumps(m))
    else:
        _rewrite(b, name, content)
    found = {i.name: i for i in store.list_bundles(models, include_default=False)}
    assert set(found) == {"bad", "ok"}
    assert found["ok"].broken is None and found["ok"].headline
    assert found["bad"].broken is not None and reason in found["bad"].broken
    assert "\n" not in found["bad"].broken
    with pytest.raises(BundleError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        store.load_bundle(b)


def test_listing_shows_every_folder_missing_files_and_links(saved, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "empty").mkdir()
    (models / "notes").mkdir()
    (models / "notes" / "a.txt").write_text("x")
    b = _copy(saved, models / "partial")
    (b / "weights.safetensors").unlink()
    (models / "linked").symlink_to(saved)
    (models / ".hidden.abc.saving").mkdir()
    (models / "plain-file.txt").write_text("x")
    found = {i.name: i for i in store.list_bundles(models, include_default=False)}
    assert set(found) == {"empty", "notes", "partial", "linked"}
    assert "not a model bundle" in found["empty"].broken
    assert "not a model bundle" in found["notes"].broken
    assert "weights.safetensors is missing" in found["partial"].broken
    assert "symbolic link" in found["linked"].broken
    assert all(i.preset == "?" and i.headline == {} for i in found.values())


def test_listing_survives_an_unreadable_models_folder(tmp_path):
    assert store.list_bundles(tmp_path / "missing", include_default=False) == []
    f = tmp_path / "file"
    f.write_text("x")
    assert store.list_bundles(f, include_default=False) == []


# --------------------------------------------------------------------------- saving


def test_save_refuses_what_is_not_a_bundle(tiny_paper, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("keep me")
    (notes / "sub").mkdir()
    for overwrite in (False, True):
        with pytest.raises(BundleError, match="is a folder that is not a model bundle"):
            store.save_bundle(tiny_paper, notes, overwrite=overwrite)
    assert (notes / "notes.txt").read_text() == "keep me" and (notes / "sub").is_dir()
    f = tmp_path / "file"
    f.write_text("data")
    with pytest.raises(BundleError, match="exists and is not a folder"):
        store.save_bundle(tiny_paper, f, overwrite=True)
    assert f.read_text() == "data"
    link = tmp_path / "link"
    link.symlink_to(notes)
    with pytest.raises(BundleError, match="symbolic link"):
        store.save_bundle(tiny_paper, link, overwrite=True)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BundleError, match="not a folder"):
        store.save_bundle(tiny_paper, fifo, overwrite=True)
    with pytest.raises(BundleError, match="must not be empty or start with '.'"):
        store.save_bundle(tiny_paper, tmp_path / ".hidden")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "file", "link", "notes"]


def test_save_into_an_empty_folder(tiny_paper, tmp_path):
    (tmp_path / "empty").mkdir()
    store.save_bundle(tiny_paper, tmp_path / "empty")
    assert store.load_bundle(tmp_path / "empty").spec == tiny_paper.model.spec


def test_save_reports_a_read_only_location(tiny_paper, tmp_path, monkeypatch):
    import errno

    real_mkdir = os.mkdir

    def ro(path, *a, **k):
        if ".saving" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)

    monkeypatch.setattr(store.saving.os, "mkdir", ro)
    with pytest.raises(BundleError, match="cannot save the model: .*read-only file system"):
        store.save_bundle(tiny_paper, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_save_reports_a_full_disk_and_leaves_nothing(tiny_paper, tmp_path, monkeypatch):
    import errno

    first = store.save_bundle(tiny_paper, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.saving, "_write_json", full)
    with pytest.raises(BundleError, match="the disk is full") as info:
        store.save_bundle(tiny_paper, tmp_path / "m", overwrite=True)
    assert "\n" not in str(info.value)
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_concurrent_thread_saves_exactly_one_wins(tiny_paper, tmp_path):
    for trial in range(5):
        target = tmp_path / f"race{trial}"
        start = threading.Barrier(4)
        outcomes: list[str] = []

        def save():
            start.wait()
            try:
                store.save_bundle(tiny_paper, target)
                outcomes.append("ok")
            except BundleError as exc:
                outcomes.append(str(exc))

        threads = [threading.Thread(target=save) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("ok") == 1, outcomes
        assert all("already exists" in o or "by another process" in o for o in outcomes if o != "ok")
        store.load_bundle(target)
    assert _hidden(tmp_path) == []


_RACE_MODEL = None


def _race_save(target, start, queue):
    start.wait()
    try:
        store.save_bundle(_RACE_MODEL, target)
        queue.put("ok")
    except BundleError as exc:
        queue.put(str(exc))


def test_concurrent_process_saves_exactly_one_wins(tiny_paper, tmp_path):
    global _RACE_MODEL
    _RACE_MODEL = tiny_paper.model
    ctx = multiprocessing.get_context("fork")
    for trial in range(3):
        target = tmp_path / f"race{trial}"
        start, queue = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_race_save, args=(target, start, queue)) for _ in range(3)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert results.count("ok") == 1, results
        store.load_bundle(target)
    assert _hidden(tmp_path) == []


def test_concurrent_overwrites_leave_one_whole_bundle(tiny_paper, tmp_path):
    target = store.save_bundle(tiny_paper, tmp_path / "m")
    start = threading.Barrier(3)
    errors: list[Exception] = []

    def save():
        start.wait()
        try:
            store.save_bundle(tiny_paper, target, overwrite=True)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.load_bundle(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# --------------------------------------------------------------------------- clean-up


def _fake_temp(models, name):
    d = models / name
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def test_clean_stale_temp_removes_only_dead_saves(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    host = store.folders._host_tag()
    p = multiprocessing.get_context("fork").Process(target=lambda: None)
    p.start()
    p.join()
    dead = _fake_temp(models, f".m.{host}-{p.pid}.abcdef.saving")
    dead_old = _fake_temp(models, f".m.{host}-{p.pid}.abc123.old")
    alive = _fake_temp(models, f".m.{host}-{os.getpid()}.abcdef.saving")
    other_host = _fake_temp(models, f".m.ffffffff-{p.pid}.abcdef.saving")
    legacy_new = _fake_temp(models, ".m.k3j4h5g6")
    legacy_old = _fake_temp(models, ".n.a1b2c3d4")
    long_ago = time.time() - 2 * 3600
    os.utime(legacy_old, (long_ago, long_ago))
    git = models / ".git"
    git.mkdir()
    (git / "HEAD").write_text("ref")
    os.utime(git, (long_ago, long_ago))
    odd = _fake_temp(models, ".m.k3j4h5g7")
    (odd / "mine.txt").write_text("not a bundle file")
    os.utime(odd, (long_ago, long_ago))
    keep = models / "m"
    keep.mkdir()
    removed = store.clean_stale_temp(models)
    assert sorted(x.name for x in removed) == sorted([dead.name, dead_old.name, legacy_old.name])
    assert alive.exists() and other_host.exists() and legacy_new.exists() and git.exists() and odd.exists() and keep.exists()
    # a foreign host's save is removed once older than the safe age
    os.utime(other_host, (long_ago, long_ago))
    assert [x.name for x in store.clean_stale_temp(models)] == [other_host.name]
    assert store.clean_stale_temp(tmp_path / "missing") == []


def test_killed_save_is_cleaned(tiny_paper, tmp_path):
    """A save killed in the middle leaves its hidden folder; the next clean-up removes it."""
    ctx = multiprocessing.get_context("fork")
    models = tmp_path / "models"
    models.mkdir()

    def save_and_die():
        real = store.saving._publish

        def die(*a, **k):
            os._exit(9)

        store.saving._publish = die
        try:
            store.save_bundle(tiny_paper, models / "m")
        finally:
            store.saving._publish = real

    p = ctx.Process(target=save_and_die)
    p.start()
    p.join(timeout=120)
    assert p.exitcode == 9
    left = _hidden(models)
    assert len(left) == 1 and left[0].endswith(".saving")
    assert [x.name for x in store.list_bundles(models, include_default=False)] == []
    assert [x.name for x in store.clean_stale_temp(models)] == left
    assert list(models.iterdir()) == []


# --------------------------------------------------------------------------- the dashboard


def _fill_with_broken_folders(models, good):
    """The models folder of a careless visitor: malformed bundles beside a good one, and a killed save."""
    models.mkdir(parents=True, exist_ok=True)
    cases = {
        "metrics-list": ("metrics.json", "[]"),
        "metrics-binary": ("metrics.json", None),
        "config-list": ("config.json", "[1]"),
        "mae-text": ("metrics.json", '{"materials": {"Gap": {"mae": "low"}}}'),
        "manifest-string": ("manifest.json", '"x"'),
    }
    for name, (file, text) in cases.items():
        b = _copy(good, models / name)
        if text is None:
            (b / file).write_bytes(b"\x89PNG\x00\xff\xfe")
        elif file == "manifest.json":
            (b / file).write_text(text)
        else:
            _rewrite(b, file, text)
    partial = _copy(good, models / "missing-files")
    (partial / "weights.safetensors").unlink()
    (partial / "record.json").unlink()
    (models / "[click](evil.example)").mkdir()  # a folder name is user text: never Markdown
    _copy(good, models / "good")
    p = multiprocessing.get_context("fork").Process(target=lambda: None)
    p.start()
    p.join()
    stale = models / f".good.{store.folders._host_tag()}-{p.pid}.abcdef.saving"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    return stale


@pytest.mark.parametrize("page", ["pages/predict.py", "pages/train.py", "pages/explain.py", "pages/screen.py", "pages/latents.py"])
def test_pages_keep_working_with_broken_models(app_env, saved, page):
    from app import model_state
    from tests.app_driver import exceptions, open_app

    stale = _fill_with_broken_folders(app_env, saved)
    at = open_app(page)
    assert not at.exception, exceptions(at)
    assert not stale.exists()  # the app cleaned the killed save at start
    labels = [e.label for e in at.expander]
    assert any("7 saved models cannot be used" in label for label in labels), labels
    tables = [df.value for df in at.dataframe if "problem" in getattr(df.value, "columns", [])]
    assert tables, "no table of the unusable models"
    problems = dict(zip(tables[0]["model"], tables[0]["problem"]))
    assert "metrics.json must hold an object" in problems["metrics-list"]
    assert "not UTF-8" in problems["metrics-binary"]
    assert "MAE of 'materials/Gap' is not a number" in problems["mae-text"]
    assert "missing" in problems["missing-files"]
    boxes = [sb for sb in at.selectbox if sb.key and sb.key.endswith("model_picker")]
    assert boxes
    offered = [str(o) for o in boxes[0].options]
    assert any("good" in o for o in offered) and not any("metrics-list" in o for o in offered)
    assert "evil.example" not in "".join(str(m.value) for m in at.markdown)
    assert sum(1 for o in model_state.model_options() if o.broken) == 7


def test_absurdly_large_json_is_refused_unread(saved, tmp_path):
    b = _copy(saved, tmp_path / "b")
    with open(b / "record.json", "r+b") as fh:
        fh.truncate(store.loading._MAX_JSON_BYTES + 1)  # sparse: only the size is looked at
    assert "MB, more than a bundle's JSON can be" in store.bundle_info(b).broken
    with pytest.raises(BundleError, match="more than a bundle's JSON can be"):
        store.load_bundle(b, verify=False)
