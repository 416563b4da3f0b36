"""Loading a bundle into a :class:`~nestedae_core.model.chain.NestedAE`: checksums, format, configuration, weight shapes; no pickle."""
from __future__ import annotations

import json
import os
import math
import stat
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from pydantic import ValidationError

from .. import __version__
from ..model.config import ChainSpec, config_error_message, trusted_chain_spec
from ..errors import BundleError, ConfigError
from ..model.intervals import TargetCalibration, calibration_from_json
from ..physics import ceilings as _ceilings  # noqa: F401  registers the device-physics ceilings a bundle's spec may name
from ..perovskite import domain_wording as _domain_wording  # noqa: F401  registers how inputs read in domain reasons
from .layout import _FILES, _OPTIONAL_FILES, BUNDLE_FORMAT, _sha256, default_bundle_path, is_shipped_bundle

if TYPE_CHECKING:  # torch, pandas and the networks load with the first bundle: reading a bundle's JSON needs none
    from ..model.chain import NestedAE

__all__ = ["load_bundle", "load_default_bundle"]


# --------------------------------------------------------------------------- loading

#: Largest bundle JSON file read (bytes); the shipped ones are well below 10 MB.
_MAX_JSON_BYTES = 200_000_000


#: A file's bytes with every digit read as 0, ``E`` as ``e`` and ``+`` as ``-``: its numbers' shapes.
_NUMBER_SHAPE = bytes.maketrans(b"123456789E+", b"000000000e-")


def _may_overflow(raw: bytes) -> bool:
    """Whether a number in ``raw`` may be out of float range: an exponent of 3+ digits, or 300+ digits in a row.

    The same test as the regular expression ``[eE][+-]?[0-9]{3,}|[0-9]{300,}`` (numbers are then
    checked one by one), as three substring searches: about 10x faster on a bundle's megabyte of floats.
    """
    shape = raw.translate(_NUMBER_SHAPE)
    return b"e000" in shape or b"e-000" in shape or b"0" * 300 in shape


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
        if finite and _may_overflow(raw):
            return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
        if finite:  # no number can overflow: the C parser's floats are finite (NaN/Infinity refused), and much faster
            return json.loads(text, parse_constant=_no_constant)
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


def _read_spec(root: Path, trusted: bool = False) -> tuple[dict[str, Any], ChainSpec]:
    """config.json and its spec, validated; ``trusted`` (a shipped bundle whose checksums were verified): built
    without validation (:func:`~nestedae_core.model.config.trusted_chain_spec`), validated when that fails."""
    cfg = _read_json(root / "config.json")
    fmt = cfg.get("format") if isinstance(cfg, dict) else None
    if not isinstance(cfg, dict):
        raise BundleError(f"bundle {root}: config.json must hold an object, not {type(cfg).__name__}; the bundle is corrupt")
    if fmt != BUNDLE_FORMAT:
        raise BundleError(f"bundle {root} has format {fmt!r}, this nestedae_core {__version__} reads format {BUNDLE_FORMAT}; re-train the model with this version")
    if trusted:
        try:
            return cfg, trusted_chain_spec(cfg["spec"])
        except (KeyError, TypeError):
            pass  # not as this version writes it: validate, which says what is wrong
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
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..model.chain import DomainModel, NestedAE, StagePreprocessing
    from ..model.columns import LazyFrames
    from ..model.nn import StageNet
    from .saving import _check_finite_weights

    root = Path(path)
    sums = _check_files(root)
    if verify:
        for name in (*_FILES, *(n for n in _OPTIONAL_FILES if n in sums)):
            f = root / name
            if not f.is_file():
                raise BundleError(f"bundle file {name} is missing in {root}; the bundle is incomplete")
            if sums.get(name) != _sha256(f):
                raise BundleError(f"bundle file {name} in {root} does not match its checksum: the bundle was modified or is corrupt; re-train or restore it")
    cfg, spec = _read_spec(root, trusted=verify and is_shipped_bundle(root))
    prep_json = _read_json(root / "preprocessing.json", finite=True)
    try:
        stages = prep_json["stages"]
        preps = [StagePreprocessing.from_json(s["preprocessing"]) for s in stages]
        domains = [DomainModel.from_json(s["domain"]) for s in stages]
        # built into DataFrames when an explanation first asks: a prediction imports no pandas
        backgrounds = LazyFrames((list(s["background"]["rows"]), list(s["background"]["columns"])) for s in stages)
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


def load_default_bundle(device: str = "cpu") -> NestedAE:
    """Load the shipped default model."""
    path = default_bundle_path()
    if not path.is_dir():
        raise BundleError(f"the default model bundle is missing from the installation ({path}); reinstall nestedae-core or train one with `nestedae train --preset measured --out DIR`")
    return load_bundle(path, device=device)
