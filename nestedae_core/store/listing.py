"""The saved models on disk: :class:`BundleInfo` per folder (broken ones with the reason), without loading weights."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BundleError
from .layout import SHIPPED_BUNDLE_NAMES, models_dir, shipped_bundle_path
from .loading import _check_files, _headline, _read_json, _read_spec

__all__ = ["list_bundles", "BundleInfo", "bundle_info"]

logger = logging.getLogger(__name__)


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
