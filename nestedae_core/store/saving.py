"""Saving a trained chain as a bundle: written in a hidden temporary folder, checked finite, renamed into place."""
from __future__ import annotations

import errno
import json
import logging
import os
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from .. import __version__
from ..errors import BundleError
from ..io_safe import os_error_message
from ..model.chain import NestedAE
from ..model.intervals import calibration_to_json
from .folders import _refuse_target, _target_state, _temp_name, check_save_target, remove_bundle_folder
from .layout import _FILES, BUNDLE_FORMAT, MANIFEST_KIND, _sha256, _write_json, foreign_entries

if TYPE_CHECKING:  # the loader imports this module's weight check: loading a bundle needs no pandas
    import pandas as pd

__all__ = ["save_bundle"]

logger = logging.getLogger(__name__)


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
        import pandas as pd

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
