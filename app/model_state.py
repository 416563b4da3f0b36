"""Models in the dashboard: the active model and a model picker (training jobs: :mod:`app.jobs_state`).

* :func:`active_model` - the model chosen in this session (default: the shipped
  bundle, or ``$NESTEDAE_DEFAULT_MODEL`` when set), loaded once per bundle path
  and modification time with ``st.cache_resource`` and shared by all sessions:
  **never mutate it**.
* :func:`active_overview` - its chain and summary from the bundle's JSON files (no
  weights, no torch: the Home page).
* :func:`set_active_model` / :func:`model_picker` - choose among the default
  model and the bundles saved in :func:`nestedae_core.store.models_dir`.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from typing import TYPE_CHECKING

from nestedae_core.api import (
    BANDGAP_PBE, BundleError, BundleInfo, BundleOverview, ChainSpec, ConfigError, bundle_info, bundle_overview,
    clean_stale_temp, default_bundle_path, list_bundles, load_bundle, models_dir,
)

if TYPE_CHECKING:  # the model's module loads torch: a page that only lists or describes models needs none
    from nestedae_core.api import NestedAE

__all__ = [
    "DEFAULT_MODEL_ENV",
    "default_model_path",
    "model_options",
    "active_model_path",
    "active_model",
    "active_overview",
    "set_active_model",
    "load_model",
    "model_picker",
    "bundles_frame",
    "broken_frame",
]

logger = logging.getLogger(__name__)

#: Environment variable: path of a bundle to use instead of the shipped default model.
DEFAULT_MODEL_ENV = "NESTEDAE_DEFAULT_MODEL"

_ACTIVE = "nae.model.active_path"


# --------------------------------------------------------------------------- models


def default_model_path() -> Path:
    """``$NESTEDAE_DEFAULT_MODEL`` when set, else the bundle shipped with nestedae_core."""
    env = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    return Path(env).expanduser() if env else default_bundle_path()


def _default_info() -> BundleInfo | None:
    path = default_model_path()
    if not path.is_dir():
        return None
    b = bundle_info(path, builtin=True)
    return BundleInfo(b.name, b.path, b.preset, b.created, b.headline, True, b.broken)


@st.cache_resource(show_spinner=False)
def _clean_stale_temp_once(directory: str) -> tuple[str, ...]:
    """Remove the temporary folders of killed saves in ``directory``, once per server process."""
    return tuple(str(p) for p in clean_stale_temp(directory))


def model_options() -> list[BundleInfo]:
    """The default model (first, ``builtin=True``), the other shipped models and every folder of :func:`store.models_dir`.

    A folder that cannot be used is listed too, with ``broken`` giving the reason (never an
    exception). The first call per server removes the temporary folders killed saves left
    (:func:`nestedae_core.store.clean_stale_temp`).
    """
    _clean_stale_temp_once(str(models_dir()))
    out: list[BundleInfo] = []
    default = _default_info()
    if default is not None:
        out.append(default)
    seen = {default.path.resolve()} if default is not None else set()
    for b in list_bundles():
        if b.path.resolve() not in seen:
            out.append(b)
    return out


def active_model_path() -> Path:
    """Bundle path of this session's model (the default one unless another was chosen and still exists)."""
    chosen = st.session_state.get(_ACTIVE)
    if chosen and Path(chosen).is_dir():
        return Path(chosen)
    return default_model_path()


def set_active_model(path: str | os.PathLike[str] | None) -> None:
    """Make the bundle at ``path`` this session's model (None: back to the default)."""
    if path is None:
        st.session_state.pop(_ACTIVE, None)
        return
    p = Path(path)
    if not p.is_dir():
        raise BundleError(f"no model bundle at {p}")
    st.session_state[_ACTIVE] = str(p)


def _stamp(path: Path) -> int:
    f = path / "manifest.json"
    try:
        return f.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _load_cached(path: str, stamp: int) -> NestedAE:
    return load_bundle(path, device="cpu")


def _bundle_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder that exists; :class:`~nestedae_core.errors.BundleError` saying what to do otherwise."""
    p = Path(path)
    if not p.is_dir():
        if p.resolve() == default_bundle_path().resolve():
            raise BundleError(
                f"the default model bundle is missing ({p}); train one on the Train page and make it active, "
                f"or set {DEFAULT_MODEL_ENV} to a bundle folder"
            )
        raise BundleError(f"no model bundle at {p}")
    return p


def load_model(path: str | os.PathLike[str]) -> NestedAE:
    """The bundle at ``path``, loaded once per (path, modification time) and shared: never mutate it.

    Raises :class:`~nestedae_core.errors.BundleError` when it is missing or corrupt.
    """
    p = _bundle_folder(path)
    return _load_cached(str(p.resolve()), _stamp(p))


def active_model() -> NestedAE:
    """This session's model (see :func:`active_model_path`); shared and cached: never mutate it."""
    return load_model(active_model_path())


@st.cache_resource(show_spinner=False, max_entries=16)
def _overview_cached(path: str, stamp: int) -> BundleOverview:
    return bundle_overview(path)


def active_overview() -> BundleOverview:
    """The active model's chain and summary, read once per (path, modification time) from its bundle's JSON files:
    no weights, no torch (what Home shows, so that a cold server's first page never waits for them).

    Raises :class:`~nestedae_core.errors.BundleError` when the bundle is missing or unreadable.
    """
    p = _bundle_folder(active_model_path())
    return _overview_cached(str(p.resolve()), _stamp(p))


@st.cache_data(show_spinner=False, max_entries=64)
def _bundle_target_names(path: str, stamp: int) -> dict[str, tuple[str, str]]:
    """``stage/column`` -> (name with its band-gap fidelity, unit) from a bundle's config; {} when unreadable."""
    from app.quantities import target_name

    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        spec = ChainSpec.model_validate(cfg["spec"])
    except (OSError, KeyError, ValueError, ConfigError):
        return {}
    return {f"{s.name}/{t.column}": (target_name(s, t), t.unit) for s in spec.stages for t in s.targets}


def _target_label(key: str, info: BundleInfo) -> tuple[str, str]:
    """Name and unit of a headline metric ``stage/column`` of a bundle (the band gap with its fidelity)."""
    from app.figures import COLUMN_INFO

    names = _bundle_target_names(str(info.path), _stamp(info.path))
    if key in names:
        return names[key]
    target = key.split("/", 1)[1]
    short = {BANDGAP_PBE: "band gap"}
    label, unit = COLUMN_INFO.get(target, (target, ""))
    return short.get(target, label), unit


def _label(info: BundleInfo) -> str:
    if info.broken:
        return f"{info.name} (cannot be used)"
    bits = []
    for key, mae in info.headline.items():
        name, unit = _target_label(key, info)
        bits.append(f"{name} {mae:.3g}{(' ' + unit) if unit else ''}")
    if info.path.resolve() == default_model_path().resolve():
        tag = "default"
    else:
        tag = f"{info.preset}, shipped" if info.builtin else info.preset
    return f"{info.name} ({tag}; MAE {', '.join(bits)})" if bits else f"{info.name} ({tag})"


def broken_frame(options: list[BundleInfo]) -> pd.DataFrame:
    """Table of the models that cannot be used: name, folder and the reason (plain text, for ``st.dataframe``)."""
    return pd.DataFrame([{"model": b.name, "problem": b.broken, "path": str(b.path)} for b in options if b.broken])


def model_picker(*, key: str = "nae.model.picker", label: str = "Model", container=None, help: str | None = None) -> BundleInfo | None:
    """Select box of the usable :func:`model_options`; the choice becomes the active model. Returns the chosen entry.

    Models that cannot be used (``broken``) are not offered; a note and a table below
    the box say which and why. Shows an info message (and returns None) when no usable
    model exists yet.
    """
    where = container if container is not None else st
    everything = model_options()
    options = [o for o in everything if not o.broken]
    broken = broken_frame(everything)
    if not options:
        where.info(
            "No model yet: the default bundle is missing and none is saved. Train one on the Train page.",
            icon=":material/model_training:",
        )
        _show_broken(where, broken, key)
        return None
    paths = [str(o.path) for o in options]
    current = str(active_model_path())
    index = paths.index(current) if current in paths else 0
    # keep the widget in step with the active model chosen elsewhere (e.g. on another page)
    if st.session_state.get(key) not in paths or st.session_state.get(f"{key}.seen") != current:
        st.session_state[key] = paths[index]
    choice = where.selectbox(
        label,
        paths,
        format_func=lambda p: _label(options[paths.index(p)]),
        key=key,
        help=help or "The default model, or one you trained and saved on the Train page.",
    )
    if choice != current:
        set_active_model(None if options[paths.index(choice)].builtin else choice)
    st.session_state[f"{key}.seen"] = str(active_model_path())
    _show_broken(where, broken, key)
    return options[paths.index(choice)]


def _show_broken(where, broken: pd.DataFrame, key: str) -> None:  # type: ignore[no-untyped-def]
    if broken.empty:
        return
    n = len(broken)
    with where.expander(f"{n} saved model{'s' if n > 1 else ''} cannot be used", icon=":material/warning:"):
        st.caption("These folders of the models folder are not readable model bundles; re-train and save them, or remove them.")
        st.dataframe(broken, hide_index=True, key=f"{key}.broken")


def bundles_frame(options: list[BundleInfo] | None = None) -> pd.DataFrame:
    """Table of the models: name, preset, created, one MAE column per stage/target, default and shipped flags, path.

    When a model cannot be used, a ``problem`` column gives the reason.
    """
    rows = []
    default = default_model_path().resolve()
    opts = options if options is not None else model_options()
    for b in opts:
        row = {"model": b.name, "preset": b.preset, "created": b.created, "default": b.path.resolve() == default,
               "shipped": b.path.parent.resolve() == default_bundle_path().parent.resolve()}
        for k, v in b.headline.items():
            name, unit = _target_label(k, b)
            row[f"MAE {name}" + (f" ({unit})" if unit else "")] = v
        if any(o.broken for o in opts):
            row["problem"] = b.broken or ""
        row["path"] = str(b.path)
        rows.append(row)
    return pd.DataFrame(rows)
