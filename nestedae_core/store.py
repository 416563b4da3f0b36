"""Model bundles: save and load a trained chain as a directory, without pickle.

A bundle directory holds:

* ``config.json``: the :class:`~nestedae_core.model.config.ChainSpec`, the bundle format
  version and the package version that wrote it;
* ``weights.safetensors``: the networks' weights (``stage<i>.<parameter>``);
* ``preprocessing.json``: fitted standardisation, categories, domain models and
  background summaries (means, scales, category lists: plain numbers and strings);
* ``metrics.json``: cross-validation metrics per stage, target and fold;
* ``record.json``: the run record (seed, versions, device, dataset checksums, time, folds);
* ``oof.csv``: out-of-fold predictions (no target values: the datasets stay unshipped);
* ``calibration.json``: the out-of-fold absolute residuals per stage and target, with
  their fold ids (the CV+ prediction intervals, :mod:`nestedae_core.model.intervals`);
  bundles written before it, and models fitted on all rows, have none and give no intervals;
* ``manifest.json``: SHA-256 of every other file, checked on load (tampering or
  corruption is an error).

Saving writes to a hidden temporary directory next to the target and renames it into
place, so a bundle is never half-written; :func:`clean_stale_temp` removes the ones
killed saves left. A bundle holds no symbolic links; its numbers are finite.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import math
import re
import secrets
import shutil
import socket
import stat
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .model.config import ChainSpec, config_error_message
from .errors import BundleError, ConfigError
from .io_safe import os_error_message
from .model.chain import DomainModel, NestedAE, StagePreprocessing
from .model.intervals import TargetCalibration, calibration_from_json, calibration_to_json
from .model.nn import StageNet

__all__ = [
    "BUNDLE_FORMAT",
    "DEFAULT_BUNDLE_NAME",
    "SHIPPED_BUNDLE_NAMES",
    "shipped_bundle_path",
    "MODELS_DIR_ENV",
    "save_bundle",
    "check_save_target",
    "load_bundle",
    "default_bundle_path",
    "load_default_bundle",
    "models_dir",
    "list_bundles",
    "BundleInfo",
    "bundle_info",
    "clean_stale_temp",
    "MANIFEST_KIND",
    "bundle_files",
    "foreign_entries",
    "remove_bundle_folder",
]

logger = logging.getLogger(__name__)

#: Version of the on-disk layout; bumped on incompatible changes.
BUNDLE_FORMAT = 1
#: Name of the bundle shipped inside the package.
DEFAULT_BUNDLE_NAME = "measured-default"
#: Bundles shipped inside the package, the default first: the measured-scale chain
#: (``nestedae train --preset measured``) and the NestedAE paper's chain (``--preset paper``).
SHIPPED_BUNDLE_NAMES: tuple[str, ...] = (DEFAULT_BUNDLE_NAME, "paper-default")
#: Environment variable naming the folder where user-trained bundles are kept.
MODELS_DIR_ENV = "NESTEDAE_MODELS_DIR"

_FILES = ("config.json", "weights.safetensors", "preprocessing.json", "metrics.json", "record.json", "oof.csv")
#: Files a bundle may lack (older bundles); checked against the manifest when it lists them.
_OPTIONAL_FILES = ("calibration.json",)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True), encoding="utf-8")


# --------------------------------------------------------------------------- saving

#: Suffixes of the hidden folders a save works in: ``.<name>.<host>-<pid>.<token>.saving``
#: (being written) and ``.<name>.<host>-<pid>.<token>.old`` (a replaced bundle being removed).
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.(?P<token>[0-9a-f]+)\.(?P<kind>saving|old)$")
#: Hidden folders of older versions (``tempfile.mkdtemp`` names and the fixed ``.old``).
_LEGACY_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<token>[A-Za-z0-9_]{8}|old)$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _temp_name(name: str, kind: str) -> str:
    return f".{name}.{_host_tag()}-{os.getpid()}.{secrets.token_hex(6)}.{kind}"


#: What a bundle's manifest says of itself (manifests written before it say only ``format`` and ``sha256``).
MANIFEST_KIND = "nestedae-model-bundle"
#: Largest manifest.json read when deciding whether a folder is a bundle (bytes).
_MAX_MANIFEST_BYTES = 1_000_000


def _read_manifest_names(dir_fd: int) -> set[str] | None:
    """The manifest's listed names (see :func:`bundle_files`) read through an open folder descriptor, or None."""
    try:
        fd = os.open("manifest.json", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_MANIFEST_BYTES:
            return None
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            manifest = json.loads(fh.read(_MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    if not isinstance(manifest, dict) or manifest.get("kind", MANIFEST_KIND) != MANIFEST_KIND:
        return None
    sums, fmt = manifest.get("sha256"), manifest.get("format")
    if isinstance(fmt, bool) or not isinstance(fmt, int) or not isinstance(sums, dict):
        return None
    names = set(sums)
    if not {"config.json", "weights.safetensors"} <= names:
        return None
    if not all(isinstance(n, str) and n and "/" not in n and "\\" not in n and n not in (".", "..") for n in names):
        return None
    return names | {"manifest.json"}


def _inspect(folder: str | os.PathLike[str]) -> tuple[list[tuple[str, bool]], set[str] | None] | None:
    """``(entries, listed)`` of ``folder`` read through one descriptor, so both describe the same folder even while
    another process renames it: every entry with whether it is a regular file, and :func:`bundle_files`. None when
    ``folder`` cannot be opened as a folder."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.scandir(dir_fd) as it:
            entries = [(e.name, e.is_file(follow_symlinks=False)) for e in it]
        return sorted(entries), _read_manifest_names(dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)


def bundle_files(folder: str | os.PathLike[str]) -> set[str] | None:
    """The file names that make up the bundle in ``folder``, or None when ``folder`` is no model bundle.

    A folder is a model bundle only if its ``manifest.json`` says so: a JSON object with
    the bundle ``format``, a ``sha256`` table that lists ``config.json`` and
    ``weights.safetensors`` as plain file names, and (when present) ``kind`` equal to
    :data:`MANIFEST_KIND`. The names returned are the manifest's files plus
    ``manifest.json`` itself. A ``config.json`` alone never makes a folder a bundle.
    """
    found = _inspect(folder)
    return None if found is None else found[1]


def _foreign(entries: list[tuple[str, bool]], listed: set[str] | None) -> list[str]:
    return [name for name, regular in entries if listed is None or name not in listed or not regular]


def foreign_entries(folder: str | os.PathLike[str]) -> list[str]:
    """Entries of the bundle folder ``folder`` that its manifest does not list (sorted; every entry when it is no bundle).

    These are what a user put there (notes, data, sub-folders): replacing or deleting
    the bundle must never remove them.
    """
    found = _inspect(folder)
    return [] if found is None else _foreign(*found)


def _named(entries: list[str], most: int = 5) -> str:
    shown = ", ".join(entries[:most])
    return shown + (f" and {len(entries) - most} more" if len(entries) > most else "")


def _target_state(target: Path) -> tuple[str, list[str]]:
    """The state of ``target`` and the entries that are not a bundle's own: ``missing``, ``empty`` (an empty folder),
    ``bundle`` (a bundle holding only its own files), ``mixed`` (a bundle that also holds other files), ``link``,
    ``file`` (not a folder) or ``other`` (a non-empty folder that is no bundle)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "missing", []
    if stat.S_ISLNK(st.st_mode):
        return "link", []
    if not stat.S_ISDIR(st.st_mode):
        return "file", []
    found = _inspect(target)
    if found is None:  # moved away by a concurrent save just now
        return ("missing", []) if not os.path.lexists(target) else ("other", [])
    entries, listed = found
    if not entries:
        return "empty", []
    if listed is None:
        return "other", [n for n, _ in entries]
    extra = _foreign(entries, listed)
    return ("mixed" if extra else "bundle"), extra


def _refuse_target(target: Path, overwrite: bool) -> None:
    state, extra = _target_state(target)
    if state == "link":
        raise BundleError(f"{target} is a symbolic link; refusing to replace it: save the model under a new name or into a real folder")
    if state == "file":
        raise BundleError(f"{target} exists and is not a folder; refusing to replace it: choose another name")
    if state == "other":
        raise BundleError(f"{target} is a folder that is not a model bundle (it has no nestedae manifest.json listing its files); "
                          "refusing to write into it: choose a new or empty folder")
    if state == "mixed" and overwrite:
        raise BundleError(f"{target} is a model bundle that also holds files that are not part of it ({_named(extra)}); "
                          "refusing to replace it, which would delete them: move them out first or choose another folder")
    if state in ("bundle", "mixed") and not overwrite:
        raise BundleError(f"a model bundle named '{target.name}' already exists in {target.parent}; choose another name or allow overwriting (--overwrite)")


def remove_bundle_folder(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the bundle files of ``folder`` (those its manifest lists), then the folder if that left it empty.

    Never removes anything the manifest does not list. Returns the entries left behind
    (empty when the folder is gone); a folder that is no bundle is removed only when empty.
    """
    found = _inspect(folder)
    if found is None:
        return []
    entries, listed = found
    regular = {name for name, is_file in entries if is_file}
    for name in sorted((listed or set()) & regular, key=lambda n: n == "manifest.json"):  # the manifest last
        p = os.path.join(folder, name)
        if os.path.isfile(p) and not os.path.islink(p):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot remove %s: %s", p, exc)
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return []
    except OSError:
        left = sorted(os.listdir(folder))
        logger.warning("kept %s: it holds files that are not part of the model bundle (%s)", folder, _named(left))
        return left
    return []


def check_save_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Raise :class:`BundleError` unless :func:`save_bundle` may write to ``path`` (check it before a long training).

    Allowed: a missing path, an empty folder, or (with ``overwrite``) an existing bundle
    that holds nothing but its own files (:func:`bundle_files`). Refused: a folder that is
    not a bundle (a ``config.json`` alone does not make one), a bundle that also holds
    other files (they are named), a file, a device, a fifo, a symbolic link, an invalid
    name, and the bundles shipped with the package.
    """
    target = Path(path)
    if not target.name or target.name.startswith(".") or target.name in ("..",):
        raise BundleError(f"invalid bundle name '{target.name}': it must not be empty or start with '.'")
    try:
        shipped = {shipped_bundle_path(n).resolve() for n in SHIPPED_BUNDLE_NAMES}
        if target.resolve() in shipped:
            raise BundleError(f"{target} is a model shipped with nestedae_core; save under another name")
    except OSError:
        pass
    _refuse_target(target, overwrite)


def _check_finite_weights(tensors: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BundleError(f"the model's weights hold NaN or infinite values ({', '.join(bad[:3])}); training diverged: re-train with a smaller learning rate")


def _check_finite_tree(obj: Any, what: str) -> None:
    todo = [obj]
    while todo:
        item = todo.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise BundleError(f"the model's {what} holds NaN or infinite values; re-train the model")
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` folder to ``target``; never replaces what :func:`_refuse_target` protects.

    Without ``overwrite`` this relies on rename semantics: renaming a folder onto a
    non-empty folder fails, so of two concurrent saves of one name exactly one wins.
    With ``overwrite`` the old bundle is moved aside, checked once more for files that
    are not its own (put back and refused if any appeared), and only its own files are
    removed.
    """
    for _ in range(20):
        _refuse_target(target, overwrite)
        old: Path | None = None
        if overwrite and _target_state(target)[0] == "bundle":
            old = target.with_name(_temp_name(target.name, "old"))
            try:
                os.rename(target, old)
            except FileNotFoundError:  # another save moved it away meanwhile
                old = None
            if old is not None and foreign_entries(old):  # a file appeared since the check: keep everything
                os.rename(old, target)
                old = None
                continue
        try:
            os.rename(tmp, target)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            if not overwrite:  # someone else saved this name first
                raise BundleError(f"a model bundle named '{target.name}' was saved in {target.parent} by another process just now; choose another name or allow overwriting") from None
        finally:
            if old is not None:
                remove_bundle_folder(old)
    raise BundleError(f"could not save {target}: other saves of the same name keep replacing it; try again")


def save_bundle(result_or_model: Any, path: str | os.PathLike[str], *, oof: dict[str, pd.DataFrame] | None = None, overwrite: bool = False) -> Path:
    """Save a trained chain (a :class:`NestedAE` or a ``TrainResult``) as a bundle directory.

    Out-of-fold predictions are taken from a ``TrainResult`` (or ``oof``); their
    ``*_true`` columns are dropped. The write is atomic: a hidden temporary folder
    ``.<name>.<host>-<pid>.<token>.saving`` beside ``path`` is renamed into place.

    ``path`` may be missing or an empty folder. An existing bundle is replaced only
    with ``overwrite=True`` and only when it holds nothing but the files its manifest
    lists; a folder that is not a bundle, a file, a device or a symbolic link is never
    replaced. Two concurrent saves of one name without
    ``overwrite``: exactly one succeeds. Every failure (including disk full or a
    read-only location) is a :class:`BundleError` with a one-line message; nothing
    is left half-written. Returns the bundle path.
    """
    model: NestedAE = getattr(result_or_model, "model", result_or_model)
    if oof is None:
        oof = getattr(result_or_model, "oof", None)
    target = Path(path)
    check_save_target(target, overwrite=overwrite)
    tensors: dict[str, torch.Tensor] = {}
    for i, net in enumerate(model.nets):
        for k, v in net.state_dict().items():
            tensors[f"stage{i}.{k}"] = v.detach().to("cpu", torch.float32).contiguous()
    _check_finite_weights(tensors)
    prep = {
        "stages": [
            {
                "preprocessing": p.to_json(),
                "domain": d.to_json(),
                "background": {
                    "columns": list(bg.columns),
                    "rows": bg.astype(object).where(bg.notna(), None).values.tolist(),
                    "weights": w.tolist(),
                },
            }
            for p, d, bg, w in zip(model.prep, model.domains, model.backgrounds, model.background_weights)
        ]
    }
    _check_finite_tree(prep, "preprocessing")
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(_temp_name(target.name, "saving"))
        os.mkdir(tmp, 0o755)
        spec_json = json.loads(model.spec.model_dump_json())
        _write_json(tmp / "config.json", {"format": BUNDLE_FORMAT, "nestedae_core": __version__, "spec": spec_json})
        save_file(tensors, str(tmp / "weights.safetensors"), metadata={"format": str(BUNDLE_FORMAT)})
        _write_json(tmp / "preprocessing.json", prep)
        _write_json(tmp / "metrics.json", model.metrics)
        _write_json(tmp / "record.json", model.record)
        frames = []
        for stage, df in (oof or {}).items():
            keep = df[[c for c in df.columns if not c.endswith("_true")]].copy()
            keep.insert(0, "stage", stage)
            frames.append(keep)
        (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["stage", "row", "fold"])).to_csv(tmp / "oof.csv", index=False)
        written = list(_FILES)
        if model.calibration:
            _write_json(tmp / "calibration.json", calibration_to_json(model.calibration))
            written.append("calibration.json")
        manifest = {name: _sha256(tmp / name) for name in written}
        _write_json(tmp / "manifest.json", {"format": BUNDLE_FORMAT, "kind": MANIFEST_KIND, "sha256": manifest})
        for name in (*written, "manifest.json"):  # on disk before the rename makes it visible
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        _publish(tmp, target, overwrite)
        tmp = None
    except OSError as exc:
        raise BundleError(f"cannot save the model: {os_error_message(exc, target)}") from None
    except SafetensorError as exc:
        raise BundleError(f"cannot save the model to {target}: {exc}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved bundle %s", target)
    return target


def clean_stale_temp(directory: str | os.PathLike[str] | None = None, *, max_age_s: float = 3600.0) -> list[Path]:
    """Remove the hidden temporary folders that killed or failed saves left in ``directory``.

    ``directory`` defaults to :func:`models_dir`. A folder ``.<name>.<host>-<pid>.<token>.saving``
    (or ``.old``) is removed when its process is gone (same host), or when it is older
    than ``max_age_s`` seconds (a save takes seconds; other hosts' pids cannot be checked);
    a save in progress is left alone. Hidden folders of older versions are removed when
    older than ``max_age_s``. Only folders holding nothing but bundle files are touched
    (never ``.git`` or other hidden folders). Returns the removed paths.
    """
    d = Path(directory) if directory is not None else models_dir()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(d))
    except OSError:
        return removed
    now, host = time.time(), _host_tag()
    allowed = {*_FILES, *_OPTIONAL_FILES, "manifest.json"}
    for e in entries:
        if not e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
            continue
        m, legacy = _TEMP_RE.match(e.name), _LEGACY_TEMP_RE.match(e.name)
        if not m and not legacy:
            continue
        try:
            if not set(os.listdir(e.path)) <= allowed:
                continue
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        stale = age > max_age_s
        if m and not stale and m["host"] == host:
            stale = not _pid_alive(int(m["pid"]))
        if stale:
            shutil.rmtree(e.path, ignore_errors=True)
            if not os.path.lexists(e.path):
                removed.append(Path(e.path))
                logger.info("removed the temporary folder of an interrupted save: %s", e.path)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


# --------------------------------------------------------------------------- loading

#: Largest bundle JSON file read (bytes); the shipped ones are well below 10 MB.
_MAX_JSON_BYTES = 200_000_000


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not allowed")


def _read_json(path: Path, *, finite: bool = False) -> Any:
    """A bundle JSON file; ``finite``: NaN, Infinity and out-of-range numbers are errors."""
    try:
        size = os.stat(path).st_size
        if size > _MAX_JSON_BYTES:
            raise BundleError(f"bundle file {path} is {size / 1e6:.0f} MB, more than a bundle's JSON can be ({_MAX_JSON_BYTES // 1_000_000} MB); the bundle is corrupt")
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        if finite:
            return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
        return json.loads(text)
    except FileNotFoundError:
        raise BundleError(f"bundle file {path.name} is missing in {path.parent}; the bundle is incomplete, re-save or re-train it") from None
    except OSError as exc:
        raise BundleError(f"cannot read bundle file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BundleError(f"bundle file {path} is not UTF-8 text; the bundle is corrupt") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"bundle file {path} is not valid JSON ({exc}); the bundle is corrupt") from None
    except ValueError as exc:
        raise BundleError(f"bundle file {path} holds NaN or infinite values ({exc}); the bundle is corrupt, re-train it") from None
    except RecursionError:
        raise BundleError(f"bundle file {path} is nested too deeply; the bundle is corrupt") from None


def _check_files(root: Path) -> dict[str, str]:
    """Layout checks shared by loading and listing; returns the manifest's ``{file: sha256}``.

    The bundle folder must hold no symbolic link, and its files must be regular files.
    """
    try:
        st = os.stat(root)
    except OSError:
        raise BundleError(f"no model bundle at {root} (expected a directory with config.json, weights.safetensors, ...)") from None
    if not stat.S_ISDIR(st.st_mode):
        raise BundleError(f"no model bundle at {root} (expected a directory with config.json, weights.safetensors, ...)")
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        raise BundleError(f"cannot read the bundle folder {root}: {exc.strerror or exc}") from None
    for e in entries:
        if e.is_symlink():
            raise BundleError(f"bundle {root}: {e.name} is a symbolic link; bundles may hold only regular files (copy the file in instead)")
    if not (root / "manifest.json").exists():
        if not any(e.name in _FILES for e in entries):
            raise BundleError(f"{root} is not a model bundle (no manifest.json, config.json, ...)")
    names = {e.name: e for e in entries}
    for name in (*_FILES, *_OPTIONAL_FILES, "manifest.json"):
        e = names.get(name)
        if e is not None and not e.is_file(follow_symlinks=False):
            raise BundleError(f"bundle {root}: {name} is not a regular file; the bundle is corrupt")
    manifest = _read_json(root / "manifest.json")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["sha256"].items()):
        raise BundleError(f"{root}/manifest.json is malformed (expected an object with a 'sha256' table of file checksums); the bundle is corrupt")
    missing = [n for n in _FILES if n not in names]
    if missing:
        raise BundleError(f"bundle file {missing[0]} is missing in {root}; the bundle is incomplete, re-save or re-train it")
    return manifest["sha256"]


def _read_spec(root: Path) -> tuple[dict[str, Any], ChainSpec]:
    cfg = _read_json(root / "config.json")
    fmt = cfg.get("format") if isinstance(cfg, dict) else None
    if not isinstance(cfg, dict):
        raise BundleError(f"bundle {root}: config.json must hold an object, not {type(cfg).__name__}; the bundle is corrupt")
    if fmt != BUNDLE_FORMAT:
        raise BundleError(f"bundle {root} has format {fmt!r}, this nestedae_core {__version__} reads format {BUNDLE_FORMAT}; re-train the model with this version")
    try:
        spec = ChainSpec.model_validate(cfg["spec"])
    except (ValidationError, KeyError, TypeError, ConfigError) as exc:
        msg = config_error_message(exc) if isinstance(exc, ValidationError) else str(exc)
        raise BundleError(f"bundle {root} has an invalid configuration: {msg}") from None
    return cfg, spec


def _headline(root: Path, metrics: Any) -> dict[str, float]:
    """``stage/target -> MAE`` of a bundle's metrics.json; BundleError when it is malformed."""
    if not isinstance(metrics, dict):
        raise BundleError(f"bundle {root}: metrics.json must hold an object (stage -> target -> metrics), not {type(metrics).__name__}")
    out: dict[str, float] = {}
    for s, tv in metrics.items():
        if not isinstance(tv, dict):
            raise BundleError(f"bundle {root}: metrics.json entry '{s}' must be an object of targets")
        for t, v in tv.items():
            if not isinstance(v, dict):
                raise BundleError(f"bundle {root}: metrics.json entry '{s}/{t}' must be an object of metrics")
            if "mae" in v:
                mae = v["mae"]
                if isinstance(mae, bool) or not isinstance(mae, (int, float)):
                    raise BundleError(f"bundle {root}: metrics.json MAE of '{s}/{t}' is not a number ({str(mae)[:40]!r})")
                out[f"{s}/{t}"] = float(mae)
    return out


def load_bundle(path: str | os.PathLike[str], *, device: str = "cpu", verify: bool = True) -> NestedAE:
    """Load a bundle directory into a :class:`NestedAE` (weights via safetensors, no pickle).

    Checks the manifest's SHA-256 of every file (``verify``), the format version,
    the configuration and the weight shapes, and refuses symbolic links in the bundle
    and NaN or infinite values in its preprocessing and weights; any problem raises
    :class:`BundleError` with what is wrong and what to do.
    """
    root = Path(path)
    sums = _check_files(root)
    if verify:
        for name in (*_FILES, *(n for n in _OPTIONAL_FILES if n in sums)):
            f = root / name
            if not f.is_file():
                raise BundleError(f"bundle file {name} is missing in {root}; the bundle is incomplete")
            if sums.get(name) != _sha256(f):
                raise BundleError(f"bundle file {name} in {root} does not match its checksum: the bundle was modified or is corrupt; re-train or restore it")
    cfg, spec = _read_spec(root)
    prep_json = _read_json(root / "preprocessing.json", finite=True)
    try:
        stages = prep_json["stages"]
        preps = [StagePreprocessing.from_json(s["preprocessing"]) for s in stages]
        domains = [DomainModel.from_json(s["domain"]) for s in stages]
        backgrounds = [pd.DataFrame(s["background"]["rows"], columns=s["background"]["columns"]) for s in stages]
        bweights = [np.asarray(s["background"]["weights"], dtype=np.float64) for s in stages]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BundleError(f"bundle {root}: preprocessing.json is malformed ({type(exc).__name__}: {exc})") from None
    if len(preps) != len(spec.stages):
        raise BundleError(f"bundle {root}: {len(preps)} preprocessing entries for {len(spec.stages)} stages")
    try:
        tensors = load_file(str(root / "weights.safetensors"))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise BundleError(f"bundle {root}: cannot read weights.safetensors ({exc}); the bundle is corrupt") from None
    try:
        _check_finite_weights(tensors)
    except BundleError:
        raise BundleError(f"bundle {root}: weights.safetensors holds NaN or infinite values; the bundle is corrupt, re-train it") from None
    if not preps:
        raise BundleError(f"bundle {root}: preprocessing.json lists no stages; the bundle is corrupt")
    members = preps[0].cont_mean.shape[0]
    nets = []
    for i, (st, p) in enumerate(zip(spec.stages, preps)):
        prefix = f"stage{i}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net = StageNet(st, p.layout, members).set_target_standardisation(p.target_mean, p.target_scale)
            net.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError, IndexError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BundleError(f"bundle {root}: weights of stage '{st.name}' do not fit its configuration ({first})") from None
        nets.append(net.eval())
    metrics = _read_json(root / "metrics.json")
    _headline(root, metrics)
    record = _read_json(root / "record.json")
    if not isinstance(record, dict):
        raise BundleError(f"bundle {root}: record.json must hold an object, not {type(record).__name__}; the bundle is corrupt")
    calibration: dict[str, dict[str, TargetCalibration]] = {}
    if (root / "calibration.json").is_file() and "calibration.json" in sums:
        try:
            calibration = calibration_from_json(_read_json(root / "calibration.json", finite=True))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"bundle {root}: calibration.json is malformed ({type(exc).__name__}: {exc})") from None
    model = NestedAE(spec=spec, nets=nets, prep=preps, domains=domains, backgrounds=backgrounds, background_weights=bweights, metrics=metrics, record=record, calibration=calibration)
    model.record["name"] = root.name  # the saved name (the preset's name is in spec.name)
    model.record["bundle_path"] = str(root)
    return model.to(device)


def shipped_bundle_path(name: str) -> Path:
    """Path of a bundle shipped inside the package (one of :data:`SHIPPED_BUNDLE_NAMES`)."""
    if name not in SHIPPED_BUNDLE_NAMES:
        raise BundleError(f"no shipped model '{name}'; shipped: {', '.join(SHIPPED_BUNDLE_NAMES)}")
    return Path(str(resources.files("nestedae_core") / "bundles" / name))


def default_bundle_path() -> Path:
    """Path of the default bundle shipped inside the package (trained by ``nestedae train --preset measured``)."""
    return shipped_bundle_path(DEFAULT_BUNDLE_NAME)


def load_default_bundle(device: str = "cpu") -> NestedAE:
    """Load the shipped default model."""
    path = default_bundle_path()
    if not path.is_dir():
        raise BundleError(f"the default model bundle is missing from the installation ({path}); reinstall nestedae-core or train one with `nestedae train --preset measured --out DIR`")
    return load_bundle(path, device=device)


def models_dir() -> Path:
    """Folder for user-trained bundles: ``$NESTEDAE_MODELS_DIR`` or ``~/.local/share/nestedae/models``."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nestedae" / "models"


@dataclass(frozen=True)
class BundleInfo:
    """A bundle found on disk: name, path, preset, creation time and headline metrics (MAE per ``stage/target``).

    ``broken`` is None for a readable bundle, else the reason it cannot be used (one
    line); a broken entry has ``preset`` ``"?"`` and no headline.
    """

    name: str
    path: Path
    preset: str
    created: str
    headline: dict[str, float]
    builtin: bool
    broken: str | None = None


def bundle_info(path: str | os.PathLike[str], *, builtin: bool = False) -> BundleInfo:
    """Describe the bundle folder at ``path`` without loading its weights; never raises.

    Checks the layout (no symbolic links, regular files, a well-formed manifest), the
    configuration and metrics.json; a problem gives ``broken`` (the reason). Checksums
    are verified only when the model is loaded (:func:`load_bundle`).
    """
    p = Path(path)
    try:
        if os.path.islink(p):
            raise BundleError(f"{p} is a symbolic link; keep saved models as real folders in the models folder")
        _check_files(p)
        cfg, spec = _read_spec(p)
        headline = _headline(p, _read_json(p / "metrics.json"))
        record = _read_json(p / "record.json")
        if not isinstance(record, dict):
            raise BundleError(f"bundle {p}: record.json must hold an object, not {type(record).__name__}")
        return BundleInfo(p.name, p, spec.name, str(record.get("created", "")), headline, builtin)
    except BundleError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - a listing must survive any malformed folder
        reason = f"bundle {p} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    logger.warning("broken bundle %s: %s", p, reason)
    return BundleInfo(p.name, p, "?", "", {}, builtin, reason)


def list_bundles(directory: str | os.PathLike[str] | None = None, *, include_default: bool = True) -> list[BundleInfo]:
    """The shipped bundles (the default first, ``builtin=True``) then every folder of ``directory``
    (default :func:`models_dir`), sorted by name; hidden folders (temporary ones of saves) are skipped.

    Never raises for a malformed folder: it is listed with ``broken`` set to the reason.
    """
    out: list[BundleInfo] = []
    if include_default:
        out += [bundle_info(shipped_bundle_path(n), builtin=True) for n in SHIPPED_BUNDLE_NAMES if shipped_bundle_path(n).is_dir()]
    d = Path(directory) if directory is not None else models_dir()
    try:
        entries = sorted(d.iterdir()) if d.is_dir() else []
    except OSError as exc:
        logger.warning("cannot list the models folder %s: %s", d, exc)
        entries = []
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_dir() or p.is_symlink():
            out.append(bundle_info(p))
    return out
