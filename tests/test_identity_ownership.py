"""Who a user is and what they may touch: signed browser identities, admins, cancel/delete ownership, Learn's lookup.

* Browser identities are signed with a server secret (``nestedae_core.jobs.identity``): a made-up or altered
  cookie is ignored and a new identity issued; the secret is generated once beside the job store (mode 0600)
  or read from ``NESTEDAE_IDENTITY_SECRET``; the cookie is set ``SameSite=Strict``, ``Secure`` on https.
* Browser identities are never admins: ``NESTEDAE_ADMINS`` refuses them at start (one line naming the variable;
  the Train page shows it, no traceback) and ``is_admin`` is False for them even if one got in.
* Another identity can neither cancel a run nor delete a model (library and Train page).
* Learn finds its runs by a share key (a digest of kind and payload) set by the manager, never by a name: a Train
  run named like Learn's (another user's, with other results) never stands in for it; a found run whose results
  are unusable is said so and trained again.
"""
from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from nestedae_core.errors import ConfigError, InputError
from nestedae_core.jobs import JobManager, JobSettings, PermissionRefused, load_settings, run_job, synthetic_tables, train_payload
from nestedae_core.jobs.identity import (
    SECRET_ENV,
    browser_identity_from_cookie,
    cookie_for_identity,
    identity_secret,
    is_browser_identity,
    looks_like_browser_identity,
    new_browser_identity,
    secret_path,
    sign_browser_id,
)
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.app

ALICE = "browser-" + "a" * 32
BOB = "browser-" + "b" * 32
SECRET = b"s" * 64


class Later:
    """An executor that runs nothing (the test runs jobs with ``run_job`` when it wants)."""

    def submit(self, db: str, job_id: str) -> None:
        pass

    def shutdown(self) -> None:
        pass


class InProcess:
    """An executor that runs each job at once, in this process (fast: no worker process to spawn)."""

    def submit(self, db: str, job_id: str) -> None:
        run_job(db, job_id)

    def shutdown(self) -> None:
        pass


def tiny_payload(epochs: int = 3) -> dict:
    return train_payload(preset("synthetic", epochs=epochs, folds=2), device="cpu",
                         tables=synthetic_tables(n_materials=60, n_devices=120))


# --------------------------------------------------------------------------- signing


def test_a_signed_cookie_proves_its_identity_and_nothing_else_does():
    who, cookie = new_browser_identity(SECRET)
    assert is_browser_identity(who) and browser_identity_from_cookie(cookie, SECRET) == who
    assert cookie_for_identity(who, SECRET) == cookie and cookie_for_identity("alice@example.org", SECRET) is None
    browser_id, sig = cookie.split(".")
    forged = [
        browser_id,                                  # the old, unsigned format
        f"{'b' * 32}.{sig}",                         # another id with this signature
        f"{browser_id}.{'0' * 32}",                  # a made-up signature
        f"{browser_id}.{sig[:-1]}",                  # a truncated one
        f"{browser_id.upper()}.{sig}",               # not our format
        sign_browser_id(browser_id, b"another secret" * 4),  # signed by another server
        "", None, f"{cookie}; path=/",
    ]
    assert [browser_identity_from_cookie(c, SECRET) for c in forged] == [None] * len(forged)
    with pytest.raises(ValueError):
        sign_browser_id("not-hex", SECRET)


def test_the_secret_is_made_once_beside_the_store_mode_0600_and_never_overwritten(tmp_path):
    store = tmp_path / "jobs.sqlite"
    first = identity_secret(store, environ={})
    path = secret_path(store)
    assert path.parent == tmp_path and stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 64
    assert identity_secret(store, environ={}) == first  # read back, not made again
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    # many processes starting at once: one secret wins, everybody reads it
    other = tmp_path / "race" / "jobs.sqlite"
    got: list[bytes] = []
    threads = [threading.Thread(target=lambda: got.append(identity_secret(other, environ={}))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got) == 8
    # an existing secret is kept as it is
    kept = tmp_path / "kept.sqlite"
    secret_path(kept).write_text("c" * 64 + "\n")
    assert identity_secret(kept, environ={}) == b"c" * 64


def test_a_bad_secret_is_one_line_naming_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match=f"{SECRET_ENV} has 5 characters; use at least 32") as exc:
        identity_secret(tmp_path / "jobs.sqlite", environ={SECRET_ENV: "short"})
    assert "\n" not in str(exc.value)
    assert identity_secret(tmp_path / "jobs.sqlite", environ={SECRET_ENV: "x" * 40}) == b"x" * 40
    assert not secret_path(tmp_path / "jobs.sqlite").exists()  # the variable wins: no file made
    secret_path(tmp_path / "damaged.sqlite").write_text("")
    with pytest.raises(ConfigError, match="empty or damaged; delete it"):
        identity_secret(tmp_path / "damaged.sqlite", environ={})


# --------------------------------------------------------------------------- admins


@pytest.mark.parametrize("entry", [ALICE, "BROWSER-" + "A" * 32, "browser-1a2b3c", "a" * 32, "a" * 32 + "." + "b" * 32])
def test_browser_identities_are_refused_as_admins_at_start(entry):
    with pytest.raises(ConfigError) as exc:
        load_settings({"NESTEDAE_ADMINS": f"root@example.org, {entry}"})
    message = str(exc.value)
    assert message.startswith("NESTEDAE_ADMINS=") and "browser identities can never be admins" in message
    assert "login e-mails" in message and "\n" not in message and "Value error" not in message
    with pytest.raises(ValueError, match="never be admins"):
        JobSettings(admins=(entry,))  # also when built in code (pydantic's ValidationError)


def test_a_browser_identity_is_never_an_admin_even_when_the_check_is_bypassed():
    s = JobSettings.model_construct(admins=(ALICE, "root@example.org"))  # no validation: as if it got in anyway
    assert not s.is_admin(ALICE) and s.is_admin("root@example.org") and not s.is_admin(None)
    assert looks_like_browser_identity(ALICE) and not looks_like_browser_identity("root@example.org")
    assert not looks_like_browser_identity("browser-fan@example.org")  # an e-mail is a login
    assert load_settings({"NESTEDAE_ADMINS": "root@example.org, ops@example.org"}).admins == ("root@example.org", "ops@example.org")


# --------------------------------------------------------------------------- cancel and delete


def _manager(tmp_path: Path, settings: JobSettings | None = None) -> JobManager:
    return JobManager(tmp_path / "jobs.sqlite", settings=settings or load_settings({}, max_jobs_per_owner=5),
                      executor=Later(), models_dir=tmp_path / "models")


def test_another_identity_cannot_cancel_a_run_nor_delete_a_model(tmp_path):
    from nestedae_core import store as bundles
    from nestedae_core.jobs import train_output

    m = _manager(tmp_path)
    done = m.submit("train", tiny_payload(), owner=ALICE, name="alice-run")
    run_job(str(m.db_path), done)
    m.save(done, "alice-model", owner=ALICE)
    queued = m.submit("train", tiny_payload(), owner=ALICE, name="alice-queued")
    with pytest.raises(InputError, match="belongs to another user"):
        m.cancel(queued, BOB)
    with pytest.raises(PermissionRefused, match="belongs to another user"):
        m.delete_model("alice-model", owner=BOB)
    with pytest.raises(InputError, match="belongs to another user"):
        m.save(done, "bobs-copy", owner=BOB)
    assert m.get(queued).status == "queued" and (tmp_path / "models" / "alice-model").is_dir()
    assert m.jobs(BOB) == [] and m.may_modify("alice-model", BOB) is not None  # what listing shows him: nothing of hers
    # a browser identity listed as admin (the check bypassed) is still nobody's admin
    sneaky = _manager(tmp_path, JobSettings.model_construct(**{**load_settings({}).model_dump(), "admins": (BOB,)}))
    with pytest.raises(InputError, match="belongs to another user"):
        sneaky.cancel(queued, BOB)
    with pytest.raises(PermissionRefused):
        sneaky.delete_model("alice-model", owner=BOB)
    # a real (login) admin may; and the owner may
    admin = _manager(tmp_path, load_settings({}, admins="root@example.org", max_jobs_per_owner=5))
    assert admin.cancel(queued, "root@example.org") and m.get(queued).status == "cancelled"
    bundles.save_bundle(train_output(m.get(done)).model, tmp_path / "models" / "second")
    m.store.set_model_owner("second", ALICE)
    admin.delete_model("alice-model", owner="root@example.org")
    m.delete_model("second", owner=ALICE)
    assert not (tmp_path / "models" / "alice-model").exists() and not (tmp_path / "models" / "second").exists()


def test_another_identity_cannot_cancel_a_sweep(tmp_path, monkeypatch):
    from nestedae_core.sweep import Sweep, SweepConfig

    monkeypatch.setenv("NESTEDAE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("NESTEDAE_JOB_STORE", str(tmp_path / "jobs.sqlite"))
    m = _manager(tmp_path)
    config = SweepConfig(preset="synthetic", n_trials=2, epochs=10, folds=3)
    Sweep.create(config, m, owner=ALICE, study_name="alices-sweep").step()
    bobs_view = Sweep.open("alices-sweep", m, owner=BOB)
    with pytest.raises(InputError, match="belongs to another user"):
        bobs_view.cancel()
    assert not Sweep.open("alices-sweep", m, owner=ALICE).cancelled
    assert {j.status for j in m.jobs(ALICE)} == {"queued"}
    assert Sweep.open("alices-sweep", m, owner=ALICE).cancel() == 2
    assert {j.status for j in m.jobs(ALICE)} == {"cancelled"}


# --------------------------------------------------------------------------- lookups by key, never by name


def test_jobs_are_found_by_owner_and_name_or_by_share_key_never_by_anothers_name(tmp_path):
    m = _manager(tmp_path)
    payload = tiny_payload(5)
    shared = m.submit("train", payload, owner=ALICE, name="learn-n0.05-s0-plain-e5", shared=True)
    decoy = m.submit("train", tiny_payload(3), owner=BOB, name="learn-n0.05-s0-plain-e5")  # newer, same name
    same_work = m.submit("train", payload, owner=BOB, name="my-own-run")  # same payload, but his own run
    assert m.find_shared("train", payload).id == shared
    assert m.find_shared("train", tiny_payload(3)) is None and m.find_shared("latent_size_scan", payload) is None
    assert m.get(decoy).share_key is None and m.get(same_work).share_key is None and m.get(shared).share_key.startswith("sha256:")
    assert m.find("train", "learn-n0.05-s0-plain-e5", owner=ALICE).id == shared
    assert m.find("train", "learn-n0.05-s0-plain-e5", owner=BOB).id == decoy
    with pytest.raises(InputError, match="needs its owner"):
        m.find("train", "learn-n0.05-s0-plain-e5", owner="")


def test_a_store_of_an_older_version_gets_the_share_key_column(tmp_path):
    from nestedae_core.jobs import JobStore

    path = tmp_path / "jobs.sqlite"
    m = _manager(tmp_path)
    old = m.submit("train", tiny_payload(), owner=ALICE, name="old")
    con = sqlite3.connect(path)
    con.execute("DROP INDEX IF EXISTS jobs_share_key")
    con.execute("ALTER TABLE jobs DROP COLUMN share_key")
    con.commit()
    con.close()
    s = JobStore(path)
    assert s.get(old).name == "old" and s.get(old).share_key is None
    again = _manager(tmp_path)
    assert again.find_shared("train", tiny_payload(7)) is None
    assert again.get(again.submit("train", tiny_payload(7), owner=ALICE, name="new", shared=True)).share_key


# --------------------------------------------------------------------------- the dashboard


def _open(page: str, *, who: str | None = None, cookie: str | None = None, monkeypatch=None):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    from app import jobs_state
    from app_driver import APPTEST_TIMEOUT, ENTRY, exceptions

    if monkeypatch is not None:
        monkeypatch.setattr(jobs_state, "_cookie", lambda: cookie or "")
    at = AppTest.from_file(ENTRY, default_timeout=APPTEST_TIMEOUT)
    if who is not None:
        at.session_state["nae.jobs.identity"] = who
    at.run()
    at.cookie_scripts = [h.value for h in at.get("html") if "nestedae_browser=" in h.value]  # set once per session
    at.first_sidebar_errors = [e.value for e in at.sidebar.error]
    at.switch_page(page).run()
    assert not at.exception, exceptions(at)
    return at


@pytest.fixture
def alices_run(app_env):
    """A finished run of ALICE in the app's job store (beside the test's models dir)."""
    from nestedae_core.jobs import job_store_path

    m = JobManager(job_store_path(), settings=load_settings({}, max_jobs_per_owner=5), executor=Later())
    done = m.submit("train", tiny_payload(), owner=ALICE, name="alice-run")
    run_job(str(m.db_path), done)
    return m, done


def test_the_dashboard_accepts_only_a_signed_cookie_and_sets_it_strict(alices_run, monkeypatch):
    from app_driver import texts
    from nestedae_core.jobs import job_store_path

    m, done = alices_run
    secret = identity_secret(job_store_path())
    good = cookie_for_identity(ALICE, secret)
    at = _open("pages/train.py", cookie=good, monkeypatch=monkeypatch)
    assert at.session_state["nae.jobs.identity"] == ALICE
    assert at.selectbox(key="train.selected_job").value == done
    (script,) = at.cookie_scripts
    assert f"nestedae_browser={good};" in script and "SameSite=Strict" in script and "max-age=7776000" in script
    assert "location.protocol === 'https:' ? '; Secure'" in script and "HttpOnly" not in script
    for forged in ("a" * 32, "a" * 32 + "." + "0" * 32, sign_browser_id("a" * 32, b"another server's secret")):
        other = _open("pages/train.py", cookie=forged, monkeypatch=monkeypatch)
        who = other.session_state["nae.jobs.identity"]
        assert who != ALICE and is_browser_identity(who)
        assert "No runs yet" in texts(other) and "alice-run" not in texts(other)
        (issued,) = other.cookie_scripts
        assert f"nestedae_browser={cookie_for_identity(who, secret)};" in issued  # the fresh identity's own signed cookie


def test_a_browser_admin_is_refused_on_the_page_in_one_line(app_env, monkeypatch):
    monkeypatch.setenv("NESTEDAE_ADMINS", ALICE)
    at = _open("pages/train.py", who=ALICE)
    errors = [e.value for e in at.error]
    assert errors and all("NESTEDAE_ADMINS" in e and "never be admins" in e and "\n" not in e for e in errors)
    assert at.first_sidebar_errors and "NESTEDAE_ADMINS" in at.first_sidebar_errors[0]  # on every page, in the sidebar


def test_bobs_train_page_offers_no_cancel_or_delete_of_alices(alices_run, app_env, monkeypatch):
    from app_driver import texts
    from nestedae_core import store as bundles
    from nestedae_core.jobs import train_output

    m, done = alices_run
    queued = m.submit("train", tiny_payload(), owner=ALICE, name="alice-waiting")
    bundles.save_bundle(train_output(m.get(done)).model, app_env / "alices")
    m.store.set_model_owner("alices", ALICE)
    at = _open("pages/train.py", who=BOB)
    assert "No runs yet" in texts(at) and not [b for b in at.button if b.key and "cancel" in b.key]
    assert not [s for s in at.selectbox if s.key == "train.delete_name"]
    assert m.get(queued).status == "queued" and (app_env / "alices").is_dir()


@pytest.fixture
def in_process_jobs(app_env, monkeypatch):
    """The app's job manager runs each job at once in this process (the Learn page then needs no worker process)."""
    import nestedae_core.jobs.manager as manager_module

    monkeypatch.setattr(manager_module, "make_executor", lambda settings: InProcess())
    return app_env


def test_a_train_run_named_like_learns_never_stands_in_for_it(in_process_jobs, monkeypatch):
    from app import jobs_state
    from nestedae_core.jobs import job_store_path
    from nestedae_core.model.config import ChainSpec

    # Bob's own Train run, named as Learn names its 5-epoch run, but a one-stage chain (no y2 at all)
    m = JobManager(job_store_path(), settings=load_settings({}), executor=Later())
    stage = preset("synthetic", epochs=3).stages[0]
    decoy = m.submit("train", train_payload(ChainSpec(name="decoy", stages=[stage], folds=2), device="cpu",
                                            tables=synthetic_tables(n_materials=60, stages={"materials": "materials"})),
                     owner=BOB, name="learn-n0.05-s0-plain-e5")
    run_job(str(m.db_path), decoy)
    assert m.get(decoy).status == "done"
    at = _open("pages/learn.py", who=ALICE)
    at.number_input(key="learn.epochs").set_value(5)
    at.button(key="learn.train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["y2 validation MAE (stage 2)"].endswith(" a.u.")
    learn_jobs = [j for j in m.jobs(kind="train") if j.share_key]
    assert len(learn_jobs) == 1 and learn_jobs[0].owner == ALICE and learn_jobs[0].id != decoy
    assert learn_jobs[0].payload["spec"]["stages"][0]["epochs"] == 5 and len(learn_jobs[0].payload["spec"]["stages"]) == 2
    # Bob's Learn page reuses Alice's shared run, not his own run of that name
    bobs = _open("pages/learn.py", who=BOB)
    bobs.number_input(key="learn.epochs").set_value(5)
    bobs.button(key="learn.train").click().run()
    assert not bobs.exception, [e.value for e in bobs.exception]
    bob_metrics = {x.label: x.value for x in bobs.metric}
    assert all(bob_metrics[k] == metrics[k] for k in ("y1 validation MAE (stage 1)", "y2 validation MAE (stage 2)"))
    assert len([j for j in m.jobs(kind="train") if j.share_key]) == 1
    # a found run whose results are gone: said in one line and trained again, no traceback
    import shutil

    shutil.rmtree(learn_jobs[0].bundle)
    jobs_state._cached_output.clear()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot be shown" in w.value and "training it again" in w.value for w in at.warning)
    assert {x.label for x in at.metric} >= {"y1 validation MAE (stage 1)", "y2 validation MAE (stage 2)"}
    shared = [j for j in m.jobs(kind="train") if j.share_key]
    assert len(shared) == 2 and shared[-1].status == "done" and shared[-1].share_key == shared[0].share_key
