"""Saved models and their owners: who may overwrite or delete a model, saving a job's staged bundle, deleting.

Every model saved through the job system has an owner recorded in the job store
(the identity of whoever saved it). Rules:

* a name that is free (no bundle folder) may be taken by anyone;
* an existing model may be overwritten or deleted by its owner or an admin
  (``NESTEDAE_ADMINS``); everyone else sees it read-only;
* a model without a recorded owner (saved by the CLI or copied in by hand) may
  be overwritten or deleted by an admin only;
* shipped models and the default model can never be replaced from here;
* in read-only mode (``NESTEDAE_READ_ONLY=1``) nothing is saved or deleted.

Saving re-writes the staged bundle with :func:`nestedae_core.store.save_bundle`
(atomic: a hidden temporary folder renamed into place; of two concurrent saves
of one name without ``overwrite`` exactly one wins). The ownership check, the
write and the owner record happen under one lock per job store, so two users
cannot interleave an overwrite.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import BundleError, InputError
from .jobstore import JobRecord, JobStore
from .limits import check_read_only
from .names import validate_model_name
from .settings import JobSettings

__all__ = ["PermissionRefused", "modify_refusal", "save_staged", "delete_model", "store_lock", "clean_deleting"]

logger = logging.getLogger(__name__)


#: Marks the hidden folder a model is moved to while it is deleted: ``.<name>.deleting-<token>``.
DELETING_TAG = "deleting"
_DELETING_RE = re.compile(r"^\.(?P<name>.+)\.deleting-[0-9a-f]{8}$")


def clean_deleting(models_dir: Path) -> list[Path]:
    """Remove the hidden folders of deletes that were interrupted (``.<name>.deleting-<token>``); returns them."""
    removed = []
    try:
        entries = list(os.scandir(models_dir))
    except OSError:
        return removed
    for e in entries:
        if _DELETING_RE.match(e.name) and e.is_dir(follow_symlinks=False):
            from ..store import remove_bundle_folder

            if not remove_bundle_folder(e.path):  # only the bundle's own files; anything else stays
                removed.append(Path(e.path))
    return removed


class PermissionRefused(BundleError):
    """A save or delete refused because the model belongs to someone else."""


@contextlib.contextmanager
def store_lock(store: JobStore) -> Iterator[None]:
    """An exclusive lock (per job store, across processes of this machine) around a save or delete."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks: the atomic rename still keeps bundles whole
        yield
        return
    path = store.path.with_name(store.path.name + ".lock")
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _is_protected(target: Path) -> bool:
    from .. import store

    try:
        protected = {store.default_bundle_path().resolve(), *(store.shipped_bundle_path(n).resolve() for n in store.SHIPPED_BUNDLE_NAMES)}
        env = os.environ.get("NESTEDAE_DEFAULT_MODEL", "").strip()
        if env:
            protected.add(Path(env).expanduser().resolve())
        return target.resolve() in protected
    except (OSError, BundleError):
        return False


def modify_refusal(store: JobStore, settings: JobSettings, target: Path, identity: str) -> str | None:
    """Why ``identity`` may not replace or delete the model folder ``target`` (None when it may)."""
    if _is_protected(target):
        return f"'{target.name}' is a built-in or the default model; it cannot be replaced or deleted here"
    if not os.path.lexists(target):
        return None
    if settings.is_admin(identity):
        return None
    owner = store.model_owner(target.name)
    if owner is None:
        return (f"the model '{target.name}' has no recorded owner (saved outside the app); only an admin "
                f"(NESTEDAE_ADMINS) may replace or delete it: choose another name")
    if owner != identity:
        return f"the model '{target.name}' belongs to another user; you may use it but not replace or delete it: choose another name"
    return None


def _read_oof(path: Path) -> dict[str, "object"] | None:
    import pandas as pd

    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    if "stage" not in frame.columns:
        return None
    return {str(s): part.drop(columns=["stage"]).reset_index(drop=True) for s, part in frame.groupby("stage", sort=False)}


def save_staged(store: JobStore, settings: JobSettings, rec: JobRecord, name: str, *, identity: str, models_dir: Path,
                overwrite: bool = False) -> Path:
    """Save the staged bundle of finished job ``rec`` as ``models_dir/<name>``, owned by ``identity``.

    Raises:
        InputError: read-only mode, invalid name, job not done or not yours.
        PermissionRefused: the name belongs to another user (or to nobody, and you are no admin).
        BundleError: a model of that name exists and ``overwrite`` is false, or the write failed.
    """
    from .. import store as bundles

    check_read_only(settings, "saving models")
    clean = validate_model_name(name)
    if rec.owner != identity and not settings.is_admin(identity):
        raise InputError("this run belongs to another user; only its owner may save it")
    if rec.status != "done" or not rec.bundle:
        raise InputError(f"run '{rec.name}' is {rec.status}; only a finished ('done') run can be saved")
    staged = Path(rec.bundle)
    if not (staged / "manifest.json").is_file():
        raise InputError(f"the trained model of run '{rec.name}' is no longer on the server; train it again")
    target = Path(models_dir) / clean
    with store_lock(store):
        if os.path.lexists(target):
            refusal = modify_refusal(store, settings, target, identity)
            if refusal:
                raise PermissionRefused(refusal)
            if not overwrite:
                raise BundleError(f"a model named '{clean}' already exists; choose another name or tick Overwrite to replace yours")
        elif _is_protected(target):
            raise PermissionRefused(f"'{clean}' is the name of a built-in or the default model; choose another name")
        model = bundles.load_bundle(staged)
        oof = _read_oof(Path(rec.work_dir) / "oof.csv")
        path = bundles.save_bundle(model, target, oof=oof, overwrite=overwrite)
        store.set_model_owner(clean, identity, rec.id)
        store.set_saved_model(rec.id, clean)
    logger.info("job %s saved as %s by %s", rec.id, path, identity)
    return Path(path)


def delete_model(store: JobStore, settings: JobSettings, name: str, *, identity: str, models_dir: Path) -> None:
    """Delete saved model ``models_dir/<name>`` (its owner or an admin only).

    The folder is first renamed to a hidden temporary name (so it vanishes from
    listings at once and a kill mid-delete leaves nothing visible half-deleted),
    then removed.

    Raises:
        InputError: read-only mode, or no such model.
        PermissionRefused: the model belongs to someone else (or to nobody, and you are no admin).
    """
    check_read_only(settings, "deleting models")
    clean = validate_model_name(name)
    target = Path(models_dir) / clean
    with store_lock(store):
        if not os.path.lexists(target):
            raise InputError(f"there is no saved model named '{clean}'")
        refusal = modify_refusal(store, settings, target, identity)
        if refusal:
            raise PermissionRefused(refusal)
        from ..store import foreign_entries, remove_bundle_folder

        extra = foreign_entries(target) if target.is_dir() and not target.is_symlink() else []
        if extra:
            shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            raise BundleError(f"the folder of model '{clean}' also holds files that are not part of the model ({shown}); "
                              "nothing was deleted: move them out first, or remove the folder by hand")
        trash = target.with_name(f".{clean}.{DELETING_TAG}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(target, trash)
        except OSError as exc:
            raise BundleError(f"cannot delete the model '{clean}': {exc.strerror or exc}") from None
        store.forget_model(clean)
    if trash.is_dir() and not trash.is_symlink():
        left = remove_bundle_folder(trash)
        if left:  # a file appeared meanwhile: put the folder back with it
            with contextlib.suppress(OSError):
                os.rename(trash, target)
    else:
        with contextlib.suppress(OSError):
            os.unlink(trash)
    logger.info("model %s deleted by %s", clean, identity)
