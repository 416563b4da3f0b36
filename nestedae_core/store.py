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

Saving writes to a temporary directory next to the target and renames it into
place, so a bundle is never half-written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
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
from .errors import BundleError
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
    "load_bundle",
    "default_bundle_path",
    "load_default_bundle",
    "models_dir",
    "list_bundles",
    "BundleInfo",
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


def save_bundle(result_or_model: Any, path: str | os.PathLike[str], *, oof: dict[str, pd.DataFrame] | None = None, overwrite: bool = True) -> Path:
    """Save a trained chain (a :class:`NestedAE` or a ``TrainResult``) as a bundle directory.

    Out-of-fold predictions are taken from a ``TrainResult`` (or ``oof``); their
    ``*_true`` columns are dropped. The write is atomic: a temporary directory
    beside ``path`` is renamed into place. Returns the bundle path.
    """
    model: NestedAE = getattr(result_or_model, "model", result_or_model)
    if oof is None:
        oof = getattr(result_or_model, "oof", None)
    target = Path(path)
    if target.exists() and not overwrite:
        raise BundleError(f"{target} already exists; choose another name or allow overwriting")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        spec_json = json.loads(model.spec.model_dump_json())
        _write_json(tmp / "config.json", {"format": BUNDLE_FORMAT, "nestedae_core": __version__, "spec": spec_json})
        tensors: dict[str, torch.Tensor] = {}
        for i, net in enumerate(model.nets):
            for k, v in net.state_dict().items():
                tensors[f"stage{i}.{k}"] = v.detach().to("cpu", torch.float32).contiguous()
        save_file(tensors, str(tmp / "weights.safetensors"), metadata={"format": str(BUNDLE_FORMAT)})
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
        _write_json(tmp / "manifest.json", {"format": BUNDLE_FORMAT, "sha256": manifest})
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved bundle %s", target)
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"bundle file {path.name} is missing in {path.parent}; the bundle is incomplete, re-save or re-train it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle file {path} is not valid JSON ({exc}); the bundle is corrupt") from None


def load_bundle(path: str | os.PathLike[str], *, device: str = "cpu", verify: bool = True) -> NestedAE:
    """Load a bundle directory into a :class:`NestedAE` (weights via safetensors, no pickle).

    Checks the manifest's SHA-256 of every file (``verify``), the format version,
    the configuration and the weight shapes; any problem raises :class:`BundleError`
    with what is wrong and what to do.
    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"no model bundle at {root} (expected a directory with config.json, weights.safetensors, ...)")
    manifest = _read_json(root / "manifest.json")
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise BundleError(f"{root}/manifest.json is malformed; the bundle is corrupt")
    if verify:
        for name in (*_FILES, *(n for n in _OPTIONAL_FILES if n in manifest["sha256"])):
            f = root / name
            if not f.is_file():
                raise BundleError(f"bundle file {name} is missing in {root}; the bundle is incomplete")
            expected = manifest["sha256"].get(name)
            if expected != _sha256(f):
                raise BundleError(f"bundle file {name} in {root} does not match its checksum: the bundle was modified or is corrupt; re-train or restore it")
    cfg = _read_json(root / "config.json")
    fmt = cfg.get("format") if isinstance(cfg, dict) else None
    if fmt != BUNDLE_FORMAT:
        raise BundleError(f"bundle {root} has format {fmt!r}, this nestedae_core {__version__} reads format {BUNDLE_FORMAT}; re-train the model with this version")
    try:
        spec = ChainSpec.model_validate(cfg["spec"])
    except (ValidationError, KeyError, TypeError) as exc:
        msg = config_error_message(exc) if isinstance(exc, ValidationError) else str(exc)
        raise BundleError(f"bundle {root} has an invalid configuration: {msg}") from None
    prep_json = _read_json(root / "preprocessing.json")
    try:
        stages = prep_json["stages"]
        preps = [StagePreprocessing.from_json(s["preprocessing"]) for s in stages]
        domains = [DomainModel.from_json(s["domain"]) for s in stages]
        backgrounds = [pd.DataFrame(s["background"]["rows"], columns=s["background"]["columns"]) for s in stages]
        bweights = [np.asarray(s["background"]["weights"], dtype=np.float64) for s in stages]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bundle {root}: preprocessing.json is malformed ({type(exc).__name__}: {exc})") from None
    if len(preps) != len(spec.stages):
        raise BundleError(f"bundle {root}: {len(preps)} preprocessing entries for {len(spec.stages)} stages")
    try:
        tensors = load_file(str(root / "weights.safetensors"))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise BundleError(f"bundle {root}: cannot read weights.safetensors ({exc}); the bundle is corrupt") from None
    members = preps[0].cont_mean.shape[0]
    nets = []
    for i, (st, p) in enumerate(zip(spec.stages, preps)):
        net = StageNet(st, p.layout, members).set_target_standardisation(p.target_mean, p.target_scale)
        prefix = f"stage{i}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise BundleError(f"bundle {root}: weights of stage '{st.name}' do not fit its configuration ({first})") from None
        nets.append(net.eval())
    metrics = _read_json(root / "metrics.json")
    record = _read_json(root / "record.json")
    calibration: dict[str, dict[str, TargetCalibration]] = {}
    if (root / "calibration.json").is_file() and "calibration.json" in manifest["sha256"]:
        try:
            calibration = calibration_from_json(_read_json(root / "calibration.json"))
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
    """A bundle found on disk: name, path, preset, creation time and headline metrics."""

    name: str
    path: Path
    preset: str
    created: str
    headline: dict[str, float]
    builtin: bool


def list_bundles(directory: str | os.PathLike[str] | None = None, *, include_default: bool = True) -> list[BundleInfo]:
    """Bundles in ``directory`` (default :func:`models_dir`) plus the shipped ones (the default first,
    ``builtin=True``); unreadable ones are skipped."""
    out: list[BundleInfo] = []
    roots: list[tuple[Path, bool]] = []
    if include_default:
        roots += [(shipped_bundle_path(n), True) for n in SHIPPED_BUNDLE_NAMES if shipped_bundle_path(n).is_dir()]
    d = Path(directory) if directory is not None else models_dir()
    if d.is_dir():
        roots += [(p, False) for p in sorted(d.iterdir()) if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]
    for p, builtin in roots:
        try:
            cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
            metrics = json.loads((p / "metrics.json").read_text(encoding="utf-8"))
            record = json.loads((p / "record.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            logger.warning("skipping unreadable bundle %s", p)
            continue
        headline = {f"{s}/{t}": float(v["mae"]) for s, tv in metrics.items() for t, v in tv.items() if "mae" in v}
        out.append(BundleInfo(p.name, p, cfg.get("spec", {}).get("name", "?"), str(record.get("created", "")), headline, builtin))
    return out
