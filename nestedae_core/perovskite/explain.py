"""The perovskite explanations: the band gap and the PCE of a chain, found by column (not by position).

:mod:`nestedae_core.explain` explains any output of any stage and knows no
chemistry; here the two outputs this domain asks about are named:

* :func:`explain_bandgap`: the DFT band gap (PBE first, else HSE06, else the
  measured gap: see :func:`~.fidelity.target_fidelity`) of the first stage that
  predicts one, w.r.t. that stage's own inputs (the site descriptors, ...);
* :func:`explain_pce`: the PCE target (column ``JV_reverse_scan_PCE``) of the
  last stage that predicts it, w.r.t. that stage's own inputs (upstream latents
  as given values, ETL, HTL).

Both take the explain functions' arguments and label rows by their formula or
composition (:data:`~nestedae_core.vocabulary.LABEL_COLUMNS`).
"""
from __future__ import annotations

import pandas as pd

from ..errors import InputError
from ..explain.api import explain_stage_output
from ..explain.attribution import Attribution
from ..explain.methods import Method
from ..explain.settings import ExplainSettings
from ..model.chain import NestedAE
from ..vocabulary import LABEL_COLUMNS, PCE
from .fidelity import target_fidelity

__all__ = ["bandgap_output", "explain_bandgap", "explain_pce", "pce_output"]

#: Band-gap fidelities in the order :func:`bandgap_output` prefers them.
_GAP_ORDER = ("PBE", "HSE", "measured")


def bandgap_output(model: NestedAE) -> tuple[int, str]:
    """(stage index, column) of the band gap :func:`explain_bandgap` explains; InputError when the chain predicts none."""
    found: dict[str, tuple[int, str]] = {}
    for i, st in enumerate(model.spec.stages):
        for t in st.targets:
            fid = target_fidelity(st, t)
            if fid is not None and fid not in found:
                found[fid] = (i, t.column)
    for fid in _GAP_ORDER:
        if fid in found:
            return found[fid]
    raise InputError("this model predicts no band gap; explain its outputs with explain_stage_output")


def pce_output(model: NestedAE) -> tuple[int, str]:
    """(stage index, column) of the PCE :func:`explain_pce` explains; InputError when the chain predicts none."""
    if len(model.spec.stages) == 1:
        raise InputError("this model has a single stage; explain its target with explain_bandgap or explain_stage_output")
    for i in range(len(model.spec.stages) - 1, -1, -1):
        if PCE in model.spec.stages[i].target_columns:
            return i, PCE
    raise InputError(f"this model predicts no PCE ({PCE}); explain its outputs with explain_stage_output")


def explain_bandgap(
    model: NestedAE,
    frame: pd.DataFrame,
    *,
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> Attribution:
    """The band gap (eV; see :func:`bandgap_output`) w.r.t. its stage's own inputs (e.g. the 15 descriptors)."""
    stage, column = bandgap_output(model)
    return explain_stage_output(model, stage, column, frame, inputs="stage", method=method, member=member, settings=settings,
                                label_columns=LABEL_COLUMNS)


def explain_pce(
    model: NestedAE,
    frame: pd.DataFrame,
    *,
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> Attribution:
    """The PCE (%) w.r.t. its stage's own inputs: the upstream latents (``materials.z1`` ...) as given values, ETL and HTL."""
    stage, column = pce_output(model)
    return explain_stage_output(model, stage, column, frame, inputs="stage", method=method, member=member, settings=settings,
                                label_columns=LABEL_COLUMNS)
