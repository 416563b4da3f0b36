"""Stage tables: a dataset turned into the table a stage trains on.

Adds derived columns the presets use (``phase`` from the phase one-hot columns of
the newer alloy releases; for the device table the 14 site fractions parsed from
each composition and ``phase`` = ``"Cubic"``, the stated assumption of
:data:`~nestedae_core.data.derived.ASSUMED_FILM_PHASE`; ``X_at_wt`` for the
device file is added by :func:`nestedae_core.data.load`) and serves the two
tables of the synthetic set (``synthetic`` = materials, ``synthetic-devices`` =
devices). The derived datasets (``psc-gaps``, ``mhp-dft``) come out of
:func:`nestedae_core.data.load` ready for a stage.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import pandas as pd

from ..chemistry.features import featurize_table
from ..train.tables import check_stage_table  # re-exported: the check is the training layer's, it knows no dataset
from ..model.config import ChainSpec, StageSpec
from ..vocabulary import DEVICE_COMPOSITION, IONS, PHASE, PHASE_COLUMNS
from .derived import ASSUMED_FILM_PHASE, phase_column
from .quality import mask_unphysical
from .loading import load
from .registry import dataset_info

__all__ = ["SYNTHETIC_DEVICES", "load_dataset_table", "load_stage_table", "load_chain_tables", "check_stage_table"]

logger = logging.getLogger(__name__)

#: Name of the device table of the synthetic data set.
SYNTHETIC_DEVICES = "synthetic-devices"


def _with_device_fractions(devices: pd.DataFrame) -> pd.DataFrame:
    """The device table plus the 14 site fractions (mol/mol; NaN where the composition does not parse) and ``phase``."""
    parsed, n_failed = featurize_table(devices[[DEVICE_COMPOSITION]], DEVICE_COMPOSITION)
    if n_failed:
        logger.info("device table: %d composition(s) do not parse; their site fractions are NaN", n_failed)
    out = devices.copy()
    for ion in IONS:
        out[ion] = parsed[ion].astype(float)
    out[PHASE] = ASSUMED_FILM_PHASE
    return out


def load_dataset_table(name: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True) -> pd.DataFrame:
    """A dataset as a table with the derived columns the presets use.

    ``data_dir`` is an explicit folder holding the file (for a derived dataset,
    its source files; otherwise the lookup of :func:`nestedae_core.data.locate`
    applies). The alloy tables with phase one-hot columns gain ``phase``; the
    device table (``psc-devices``) gains the 14 site fractions parsed from its
    compositions (NaN where one does not parse) and ``phase`` = ``"Cubic"``, and
    physically impossible outcomes are masked by the training rule of
    :mod:`nestedae_core.data.quality` (FF > 1: that FF is NaN; PCE above the
    Shockley-Queisser limit at the measured gap: PCE, Voc, Jsc and FF are NaN),
    so every chain trains on the same cleaned device table; no other value changes.
    """
    if name in ("synthetic", SYNTHETIC_DEVICES):
        from .synthetic import generate

        gen = generate()
        return (gen.materials if name == "synthetic" else gen.devices).copy()
    info = dataset_info(name)
    path = None
    if data_dir is not None:
        if info.kind == "derived":
            path = os.fspath(data_dir)
        else:
            candidate = os.path.join(os.fspath(data_dir), info.filename)
            path = candidate if os.path.exists(candidate) else None
    df = load(name, path, download=download)
    if info.name == "psc-devices":
        return mask_unphysical(_with_device_fractions(df))
    if PHASE not in df.columns and any(c in df.columns for c in PHASE_COLUMNS):
        df[PHASE] = phase_column(df)
    return df


def load_stage_table(spec: StageSpec, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True) -> pd.DataFrame:
    """The raw table of a stage's dataset (not yet checked; see :func:`check_stage_table`)."""
    return load_dataset_table(spec.dataset, data_dir, download=download)


def load_chain_tables(
    spec: ChainSpec,
    tables: Mapping[str, pd.DataFrame] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> dict[str, pd.DataFrame]:
    """Tables for every stage, keyed by stage name; ``tables`` (by stage name) override loading."""
    out: dict[str, pd.DataFrame] = {}
    for st in spec.stages:
        if tables is not None and st.name in tables:
            out[st.name] = tables[st.name]
        else:
            out[st.name] = load_stage_table(st, data_dir, download=download)
    return out
