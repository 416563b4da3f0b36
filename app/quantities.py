"""How the dashboard names and states a predicted quantity: which band gap, and how uncertain.

* :func:`named` / :func:`target_name` / :func:`entry_name` - a target's label with its band-gap
  fidelity and, for a DFT gap, its phase (``band gap, measured``, ``band gap, DFT HSE06+SOC (cubic)``,
  ``band gap, DFT PBE (no SOC)``: the library's :func:`nestedae_core.predict.quantity_name`);
  never a bare "band gap" for a model output. The fidelity comes from
  :func:`nestedae_core.model.config.target_fidelity` (explicit in new bundles,
  inferred from the stage's dataset for old ones).
* :func:`estimate` - a prediction with its uncertainty: the prediction interval
  ``1.590 eV (90 % interval 1.520–1.660)`` when the model is calibrated, else
  ``1.590 ± 0.022 eV`` where ± is the fold models' disagreement (not an error bar).
* :func:`disagreement` - the ensemble spread, always available as "model disagreement".

An entry is one value of :attr:`nestedae_core.predict.QueryResult.targets`:
``mean``, ``std``, ``unit``, ``label``, ``stage``, ``lower``, ``upper``, ``level``,
``fidelity``, ``disagreement`` (``lower``/``upper`` are None without calibration).
Presentation only: nothing here computes a prediction.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nestedae_core.api import (
    BANDGAP_HSE, BANDGAP_PBE_DFT, FIDELITY_LABELS, PHASE, StageSpec, TargetSpec, target_fidelity,
)

__all__ = [
    "GAP_WORDS",
    "NO_MEASURED_GAP",
    "DISAGREEMENT_NOTE",
    "named",
    "target_name",
    "entry_name",
    "has_interval",
    "level_text",
    "interval_text",
    "estimate",
    "disagreement",
    "round_fraction",
    "model_summary",
    "summary_named",
    "interval_columns",
    "column_fidelity",
]

#: How each fidelity is written next to a band gap (the vocabulary's words).
GAP_WORDS: dict[str, str] = FIDELITY_LABELS
#: Said wherever the measured-scale gap is needed (SQ limit, screening window) and the model has none.
NO_MEASURED_GAP = ("this model has no measured-scale band gap (no film stage trained on measured gaps); "
                   "a model with a measured stage (the `measured` preset) predicts it")
#: What the ± of a model without calibration is.
DISAGREEMENT_NOTE = ("± is the model disagreement (standard deviation over the fold models), not an error bar: "
                     "this model has no calibrated prediction interval, and its real error is larger")


def named(label: str, fidelity: str | None, phase: str | None = None) -> str:
    """``label`` named for a reader: a band gap by its fidelity and, for a DFT gap, its ``phase``
    (``named("band gap", "HSE", "Cubic") == "band gap, DFT HSE06+SOC (cubic)"``); ``label`` unchanged
    when ``fidelity`` is None (not a band gap)."""
    from nestedae_core.api import quantity_name  # here: its module (predictions) loads torch, which Home never needs

    return quantity_name(label, fidelity, phase)


def entry_name(entry: Mapping[str, Any]) -> str:
    """The name of one predicted quantity (an entry of ``QueryResult.targets``), with the phase of a DFT gap."""
    return named(entry["label"], entry.get("fidelity"), entry.get("phase"))


def target_name(stage: Any, target: Any, phase: str | None = None) -> str:
    """The name of a :class:`TargetSpec` of a :class:`StageSpec`, with its fidelity when it is a band gap and, when
    given, the ``phase`` of an output of a stage that takes one (the DFT gaps, the decomposition energy; predictions
    at that phase; a metric over every phase names none)."""
    at = phase if PHASE in getattr(stage, "categorical_inputs", ()) else None
    return named(target.label or target.column, target_fidelity(stage, target), at)


def column_fidelity(dataset: str, column: str) -> str | None:
    """The band-gap fidelity of a dataset column (e.g. a benchmark task's target), or None when it is no band gap."""
    explicit = {BANDGAP_PBE_DFT: "PBE", BANDGAP_HSE: "HSE"}
    if column in explicit:
        return explicit[column]
    stage = StageSpec(name="column", dataset=dataset or "?", numeric_inputs=["_"], targets=[TargetSpec(column=column)])
    return target_fidelity(stage, stage.targets[0])


def has_interval(entry: Mapping[str, Any]) -> bool:
    """True when ``entry`` carries a calibrated prediction interval."""
    return entry["lower"] is not None and entry["upper"] is not None


def level_text(level: float) -> str:
    """``0.9`` -> ``90 %``."""
    return f"{100 * float(level):.0f} %"


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def interval_text(entry: Mapping[str, Any], digits: int = 3) -> str:
    """``90 % interval 1.520–1.660`` (no unit), or "" without calibration."""
    if not has_interval(entry):
        return ""
    return f"{level_text(entry['level'])} interval {entry['lower']:.{digits}f}–{entry['upper']:.{digits}f}"


def estimate(entry: Mapping[str, Any], digits: int = 3) -> str:
    """The value with its uncertainty: ``1.590 eV (90 % interval 1.520–1.660)`` or ``1.590 ± 0.022 eV``."""
    if has_interval(entry):
        return f"{entry['mean']:.{digits}f}{_unit(entry['unit'])} ({interval_text(entry, digits)})"
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}{_unit(entry['unit'])}"


def disagreement(entry: Mapping[str, Any], digits: int = 3) -> str:
    """``model disagreement ± 0.022 eV`` (the fold models' standard deviation)."""
    return f"model disagreement ± {entry['disagreement']:.{digits}f}{_unit(entry['unit'])}"


def interval_columns(name: str, unit: str, level: float) -> tuple[str, str]:
    """Table headers of an interval's bounds: ``("PCE 90 % interval lower (%)", "PCE 90 % interval upper (%)")``."""
    u = f" ({unit})" if unit else ""
    return f"{name} {level_text(level)} interval lower{u}", f"{name} {level_text(level)} interval upper{u}"


def round_fraction(values: Any, digits: int = 6) -> Any:
    """Fractions rounded for display and CSV (``0.30000000000000004`` -> ``0.3``)."""
    return values.round(digits) if hasattr(values, "round") else round(float(values), digits)


def model_summary(model: Any) -> dict[str, str]:
    """``model.summary()`` with every band-gap metric named by its fidelity (``materials: band gap (PBE) MAE``)."""
    return summary_named(model.spec, model.summary())


def summary_named(spec: Any, summary: Mapping[str, str]) -> dict[str, str]:
    """A chain's ``summary`` (of a model, or of a bundle's overview) with every band-gap metric named by its fidelity."""
    renames = {f"{st.name}: {t.label or t.column} MAE": f"{st.name}: {target_name(st, t)} MAE"
               for st in spec.stages for t in st.targets}
    return {renames.get(k, k): v for k, v in summary.items()}
