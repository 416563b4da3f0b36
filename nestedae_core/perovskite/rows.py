"""The rows a stage is analysed on: its dataset when present, else the model's stored background.

Global attributions, latent maps and latent correlations of a stage need rows
to run the model on. :func:`stage_rows` decides which:

* the stage's own dataset (``mhp-pbe-paper`` for stage 1 and ``psc-devices``
  for stage 2 of the paper chain), when the caller has it: the rows with every
  raw input column of the model filled and only categories the model knows,
  with a label column (formula), the 14 site fractions (joined from the parsed
  formulas when the table lacks them) and the measured columns worth showing
  (:data:`MEASURED_COLUMNS`, hidden ``true_z*`` factors, the stage's targets);
* otherwise the model's stored background (k-means centroids of the training
  inputs), with a note saying why.

Pure: the caller loads the table (or passes ``None``); nothing here reads files.
:meth:`StageRows.sample` draws the bounded, seeded sample that global
attributions are computed on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ..data import lookup
from ..data.synthetic import DEVICE_TARGET, MATERIAL_TARGET, TRUTH_PREFIX
from ..errors import DataError, DataMissingError, InputError
from ..model.chain import NestedAE
from ..vocabulary import (
    BANDGAP_PBE,
    DECOMPOSITION,
    DEVICE_TARGETS,
    IONS,
    LABEL_COLUMNS,
    MEASURED_BANDGAP,
    SLME,
)

__all__ = ["BACKGROUND", "MEASURED_COLUMNS", "MIN_ROWS", "StageRows", "stage_rows"]

logger = logging.getLogger(__name__)

#: ``StageRows.source`` of rows taken from the model's stored background.
BACKGROUND = "background"
#: Measured columns kept beside the inputs (to colour maps by), in this order.
MEASURED_COLUMNS: tuple[str, ...] = (
    BANDGAP_PBE, DECOMPOSITION, SLME, MEASURED_BANDGAP, *DEVICE_TARGETS,
    MATERIAL_TARGET, DEVICE_TARGET, f"{TRUTH_PREFIX}{MATERIAL_TARGET}",
)
#: Fewest usable dataset rows; with fewer the background is used.
MIN_ROWS = 3


@dataclass
class StageRows:
    """Rows of a stage to analyse.

    Attributes:
        frame: label column (if any), the model's raw input columns, site
            fractions and measured columns; index 0..n-1.
        source: the dataset name, or :data:`BACKGROUND`.
        note: why the background is used (empty for dataset rows).
        label_column: the column naming each row (formula), or ``None``.
    """

    frame: pd.DataFrame
    source: str
    note: str
    label_column: str | None

    @property
    def from_dataset(self) -> bool:
        """True when the rows are real dataset rows, not background centroids."""
        return self.source != BACKGROUND

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """At most ``n`` rows, drawn without replacement with ``seed``, in their original order."""
        if len(self.frame) <= n:
            return self.frame
        return self.frame.sample(n=int(n), random_state=seed).sort_index()


def _dataset_rows(model: NestedAE, stage: int, table: pd.DataFrame, site_fractions: pd.DataFrame | None) -> pd.DataFrame:
    name = model.spec.stages[stage].dataset
    cols = model.raw_columns(stage)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataError(f"dataset '{name}' lacks the model's input column(s) {', '.join(missing)}")
    frame = table.copy()
    formula = lookup.formula_column(name)
    if site_fractions is not None:  # the caller's fractions take the place of any the table carries
        frame = frame.drop(columns=[ion for ion in IONS if ion in frame.columns])
        frame = frame.join(site_fractions.loc[:, list(IONS)], how="left")
    elif not all(ion in frame.columns for ion in IONS) and formula is not None and formula in frame.columns:
        frame = frame.join(lookup.site_fractions(frame, formula).loc[:, list(IONS)], how="left")
    frame = frame.dropna(subset=cols)
    for p in model.prep[: stage + 1]:
        for col, cats in zip(p.categorical_columns, p.categories):
            frame = frame[frame[col].astype(str).isin(cats)]
    if len(frame) < MIN_ROWS:
        raise DataError(f"dataset '{name}' has fewer than {MIN_ROWS} usable rows for this model")
    return frame.reset_index(drop=True)


def stage_rows(
    model: NestedAE,
    stage: int,
    table: pd.DataFrame | None = None,
    *,
    site_fractions: pd.DataFrame | None = None,
    reason: str | None = None,
) -> StageRows:
    """The rows stage ``stage`` of ``model`` is analysed on (see the module docstring).

    Args:
        table: the stage's dataset (``model.spec.stages[stage].dataset``) as
            loaded, or ``None`` when it is not available.
        site_fractions: site fractions of ``table``'s rows
            (:func:`nestedae_core.data.lookup.site_fractions`), when the caller
            already has them; computed when needed otherwise.
        reason: why ``table`` is ``None`` (shown in the note); default: the
            dataset is not on this machine.

    Raises:
        InputError: neither usable dataset rows nor a stored background.
    """
    stage = model.stage_index(stage)
    spec = model.spec.stages[stage]
    name = spec.dataset
    cols = model.raw_columns(stage)
    note = ""
    try:
        if table is None:
            raise DataMissingError(reason or f"dataset '{name}' is not on this machine")
        frame = _dataset_rows(model, stage, table, site_fractions)
        source = name
    except (DataError, InputError) as exc:
        logger.info("stage %d rows from the background: %s", stage, exc)
        if len(model.backgrounds) <= stage:
            raise InputError("this model has neither its dataset on this machine nor a stored background") from None
        frame = model.backgrounds[stage].copy().reset_index(drop=True)
        source = BACKGROUND
        note = (f"The dataset `{name}` is not available here ({exc}); showing the model's stored background instead: "
                f"{len(frame)} k-means centroids of the training inputs (not real materials, so no formulas).")
    label = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
    keep = list(dict.fromkeys(
        ([label] if label else []) + cols + [c for c in IONS if c in frame.columns]
        + [c for c in MEASURED_COLUMNS if c in frame.columns]
        + [c for c in frame.columns if c.startswith(f"{TRUTH_PREFIX}z")]
        + [t for t in spec.target_columns if t in frame.columns]
    ))
    return StageRows(frame.loc[:, keep], source, note, label)
