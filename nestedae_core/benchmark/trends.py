"""Orderings a chemist checks: measured-gap trends of a model against known relations and literature gaps.

The checks are data (:data:`TREND_CHECKS`): each :class:`TrendCheck` names
compositions in a stated order and the relation their predicted measured band
gaps (eV) must obey:

* ``decreasing`` / ``increasing``: every step along the listed order lowers /
  raises the gap (strictly);
* ``increasing_small_bowing``: increasing, and the bowing parameter ``b`` of
  ``Eg(x) = (1 - x) Eg(0) + x Eg(1) - b x (1 - x)`` (least squares over the
  interior points, eV) within ``|b| <= max_bowing_eV``;
* ``minimum_inside``: some interior member lies below both end members.

Members may carry a :class:`LiteratureGap` (a value, the spread of reported
values and a citation). Literature values are for checking only: nothing trains
or tunes on them. A prediction misses its literature value when it lies more
than :data:`LITERATURE_TOLERANCE_EV` outside the reported range.

:func:`evaluate_trends` scores a table of predictions (the public predict
output: ``bandgap_eV_mean``/``_lower``/``_upper`` and the per-stage domain
verdict); :func:`trends_benchmark` runs a model through
:meth:`nestedae_core.NestedAEModel.predict` first. A row is a **silent miss**
when its composition is inside the domain of every stage up to the measured-gap
stage and either it misses its literature value or its check fails with no
member flagged out of domain (a failed relation is explained by any flagged
member).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InputError
from ..schema import GAP_KEYS, stage_domain_key

__all__ = [
    "LITERATURE_TOLERANCE_EV",
    "LiteratureGap",
    "TrendMember",
    "TrendCheck",
    "TrendReport",
    "TREND_CHECKS",
    "evaluate_trends",
    "trends_benchmark",
]

#: A prediction further than this outside its literature range (eV) misses it.
LITERATURE_TOLERANCE_EV = 0.15
#: The measured band gap's key in every output (:mod:`nestedae_core.schema`).
GAP = GAP_KEYS["measured"]

Relation = Literal["decreasing", "increasing", "increasing_small_bowing", "minimum_inside"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LiteratureGap(_Frozen):
    """A measured band gap from the literature (eV): the value compared with, the spread of reported values, the source."""

    gap_eV: float = Field(gt=0, description="literature value (eV)")
    low_eV: float = Field(gt=0, description="lowest commonly reported value (eV)")
    high_eV: float = Field(gt=0, description="highest commonly reported value (eV)")
    citation: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check_range(self) -> "LiteratureGap":
        if not self.low_eV <= self.gap_eV <= self.high_eV:
            raise ValueError(f"literature gap {self.gap_eV} eV outside its stated range {self.low_eV}-{self.high_eV} eV")
        return self


class TrendMember(_Frozen):
    """One composition of a check: its formula, its position ``x`` along a scan (None for a plain ordering)."""

    formula: str
    x: float | None = None
    literature: LiteratureGap | None = None


class TrendCheck(_Frozen):
    """Compositions in a stated order and the relation their predicted measured gaps must obey."""

    name: str
    relation: Relation
    members: tuple[TrendMember, ...] = Field(min_length=2)
    max_bowing_eV: float = Field(default=0.5, gt=0, description="largest |bowing| (eV) of an increasing_small_bowing check")

    @model_validator(mode="after")
    def _check_members(self) -> "TrendCheck":
        if self.relation in ("minimum_inside", "increasing_small_bowing") and len(self.members) < 3:
            raise ValueError(f"check '{self.name}': a {self.relation} relation needs at least 3 members")
        if self.relation == "increasing_small_bowing":
            xs = [m.x for m in self.members]
            if any(x is None for x in xs) or xs[0] != 0.0 or xs[-1] != 1.0:
                raise ValueError(f"check '{self.name}': a bowing check needs x on every member, from 0 to 1")
        return self


def _lit(gap: float, low: float, high: float, citation: str) -> LiteratureGap:
    return LiteratureGap(gap_eV=gap, low_eV=low, high_eV=high, citation=citation)


_NOH = "Noh et al., Nano Lett. 13, 1764 (2013), absorption"
_NOH_FIT = "Noh et al., Nano Lett. 13, 1764 (2013): their fit Eg(x) = 1.57 + 0.39x + 0.33x^2 eV"
_EPERON_FA = "Eperon et al., Energy Environ. Sci. 7, 982 (2014), absorption"
_HAO = "Hao et al., J. Am. Chem. Soc. 136, 8094 (2014), MAPb(1-x)Sn(x)I3 films"

MAPBI3 = _lit(1.57, 1.55, 1.60, f"{_NOH}; 1.55-1.60 eV commonly reported")
MAPBBR3 = _lit(2.29, 2.29, 2.29, _NOH_FIT)
MAPBCL3 = _lit(3.11, 3.11, 3.11, "Kitazawa et al., J. Mater. Sci. 37, 3585 (2002), optical absorption")
FAPBI3 = _lit(1.48, 1.48, 1.51, f"{_EPERON_FA}; 1.48-1.51 eV commonly reported")
FAPBBR3 = _lit(2.23, 2.23, 2.23, _EPERON_FA)
CSPBI3 = _lit(1.73, 1.73, 1.73, "Eperon et al., J. Mater. Chem. A 3, 19688 (2015), black (cubic) phase")
CSPBBR3 = _lit(2.30, 2.25, 2.36, "Stoumpos et al., Cryst. Growth Des. 13, 2722 (2013), crystals; 2.25-2.36 eV reported for crystals and films")
CSPBCL3 = _lit(3.00, 3.00, 3.00, "Protesescu et al., Nano Lett. 15, 3692 (2015), weakly confined nanocrystals")
MASNI3 = _lit(1.30, 1.23, 1.30, f"{_HAO}; Hao et al., Nat. Photonics 8, 489 (2014) report 1.23 eV")
MAPB05SN05I3 = _lit(1.21, 1.17, 1.25, f"{_HAO}; the gap of the 50 % alloy lies below both end members")


def _noh(x: float) -> LiteratureGap:
    value = round(1.57 + 0.39 * x + 0.33 * x * x, 3)
    return _lit(value, value, value, _NOH_FIT)


def _halides(a: str, lits: Sequence[LiteratureGap | None]) -> TrendCheck:
    return TrendCheck(
        name=f"halide order {a}: Cl > Br > I",
        relation="decreasing",
        members=tuple(TrendMember(formula=f"{a}Pb{x}3", literature=lit) for x, lit in zip(("Cl", "Br", "I"), lits)),
    )


def _scan(ends: tuple[str, str], inner: str, lits: tuple[LiteratureGap | None, LiteratureGap | None],
          xs: Sequence[float], known: dict[float, LiteratureGap] | None = None) -> tuple[TrendMember, ...]:
    """Members along x = share of the second end member: the end formulas as written, ``inner`` formatted with
    ``a`` = 1 - x and ``b`` = x in between; literature values at the ends and where ``known``."""
    members = []
    for x in xs:
        if x in (0.0, 1.0):
            members.append(TrendMember(formula=ends[int(x)], x=x, literature=lits[int(x)]))
        else:
            members.append(TrendMember(formula=inner.format(a=f"{1 - x:g}", b=f"{x:g}"), x=x, literature=(known or {}).get(x)))
    return tuple(members)


_XS = (0.0, 0.25, 0.5, 0.75, 1.0)
_BR_XS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

#: The checks of ``nestedae benchmark trends``, in the order they are printed.
TREND_CHECKS: tuple[TrendCheck, ...] = (
    _halides("MA", (MAPBCL3, MAPBBR3, MAPBI3)),
    _halides("FA", (None, FAPBBR3, FAPBI3)),
    _halides("Cs", (CSPBCL3, CSPBBR3, CSPBI3)),
    TrendCheck(
        name="A-site order: FAPbI3 < MAPbI3 < CsPbI3",
        relation="increasing",
        members=(TrendMember(formula="FAPbI3", literature=FAPBI3), TrendMember(formula="MAPbI3", literature=MAPBI3),
                 TrendMember(formula="CsPbI3", literature=CSPBI3)),
    ),
    TrendCheck(
        name="FA(1-x)Cs(x)PbI3 rises with x",
        relation="increasing",
        members=_scan(("FAPbI3", "CsPbI3"), "FA{a}Cs{b}PbI3", (FAPBI3, CSPBI3), _XS),
    ),
    TrendCheck(
        name="MAPb(I(1-x)Br(x))3 rises with x, small bowing",
        relation="increasing_small_bowing",
        members=_scan(("MAPbI3", "MAPbBr3"), "MAPb(I{a}Br{b})3", (MAPBI3, MAPBBR3), _BR_XS, {x: _noh(x) for x in _BR_XS[1:-1]}),
    ),
    TrendCheck(
        name="MAPb(1-x)Sn(x)I3: minimum below both end members",
        relation="minimum_inside",
        members=_scan(("MAPbI3", "MASnI3"), "MAPb{a}Sn{b}I3", (MAPBI3, MASNI3), _XS, {0.5: MAPB05SN05I3}),
    ),
)


def _relation(check: TrendCheck, gaps: np.ndarray) -> tuple[bool, str]:
    """Whether predicted gaps (eV, in member order) obey the check's relation, and what was found."""
    names = [m.formula for m in check.members]
    steps = np.diff(gaps)
    if check.relation == "decreasing" or check.relation.startswith("increasing"):
        sign = -1.0 if check.relation == "decreasing" else 1.0
        bad = [f"{names[i]} {gaps[i]:.3f} -> {names[i + 1]} {gaps[i + 1]:.3f}" for i in np.flatnonzero(sign * steps <= 0)]
        ok = not bad
        detail = "every step " + ("lowers" if sign < 0 else "raises") + " the gap" if ok else "wrong direction: " + "; ".join(bad)
        if check.relation == "increasing_small_bowing":
            xs = np.array([m.x for m in check.members], dtype=float)
            inner = (xs > 0) & (xs < 1)
            linear = (1 - xs) * gaps[0] + xs * gaps[-1]
            basis = xs * (1 - xs)
            bowing = float(np.sum(basis[inner] * (linear[inner] - gaps[inner])) / np.sum(basis[inner] ** 2))
            small = abs(bowing) <= check.max_bowing_eV
            ok = ok and small
            detail += f"; bowing {bowing:+.2f} eV ({'within' if small else 'beyond'} ±{check.max_bowing_eV:g} eV)"
        return ok, detail
    if check.relation == "minimum_inside":
        ends = min(gaps[0], gaps[-1])
        k = 1 + int(np.argmin(gaps[1:-1]))
        ok = bool(gaps[k] < ends)
        return ok, f"lowest inside: {names[k]} {gaps[k]:.3f} eV {'<' if ok else '>='} lower end member {ends:.3f} eV"
    raise InputError(f"unknown relation '{check.relation}'")  # pragma: no cover - Relation is a Literal


@dataclass
class TrendReport:
    """The trends table: ``rows`` (one per check member) and ``checks`` (one per check); see :func:`evaluate_trends`."""

    rows: pd.DataFrame
    checks: pd.DataFrame
    model: str = ""
    level: float | None = None

    @property
    def silent_misses(self) -> int:
        """Rows that miss (literature or relation) while their composition is inside the domain."""
        return int(self.rows["silent_miss"].sum())

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN as null)."""
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
                    for r in frame.astype(object).to_dict(orient="records")]

        return {
            "model": self.model, "level": self.level, "tolerance_eV": LITERATURE_TOLERANCE_EV,
            "silent_misses": self.silent_misses,
            "checks_passed": int(self.checks["passed"].sum()), "checks": records(self.checks), "rows": records(self.rows),
        }


def _gap_domain(predictions: pd.DataFrame, stages: Sequence[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Per row: inside the domain of every stage up to the gap's, the first such stage it leaves and why."""
    cols = [stage_domain_key(s) for s in stages if stage_domain_key(s) in predictions.columns]
    if not cols:
        inside = predictions["in_domain"].to_numpy(dtype=bool)
    else:
        inside = predictions[cols].to_numpy(dtype=bool).all(axis=1)
    stage = [("" if ok else str(s)) for ok, s in zip(inside, predictions.get("domain_stage", pd.Series([""] * len(inside))))]
    reason = [("" if ok else str(m)) for ok, m in zip(inside, predictions.get("domain_message", pd.Series([""] * len(inside))))]
    return inside, stage, reason


def evaluate_trends(predictions: pd.DataFrame, checks: Sequence[TrendCheck] = TREND_CHECKS, *,
                    gap_stages: Sequence[str] = ()) -> TrendReport:
    """Score predicted measured gaps against the checks' relations and literature values.

    ``predictions``: one row per distinct formula, as :meth:`NestedAEModel.predict` returns
    (``formula``, ``bandgap_eV_mean``, optional ``bandgap_eV_lower``/``_upper`` (eV), ``in_domain``,
    ``domain_stage``, ``domain_message`` and ``<stage>_in_domain``), formulas as written in the
    checks. ``gap_stages``: the stages up to and including the measured-gap stage (their domain
    verdict counts; a later stage, e.g. the device's, does not); empty: the overall ``in_domain``.

    Returns a :class:`TrendReport`. ``rows``: ``check``, ``formula``, ``x``, ``literature_bandgap_eV``
    (with ``literature_low_eV``/``_high_eV`` and ``citation``; NaN/"" without one), ``bandgap_eV_mean``/
    ``_lower``/``_upper``, ``error_eV`` (prediction minus literature), ``literature_miss`` (more than
    :data:`LITERATURE_TOLERANCE_EV` outside the literature range), ``relation_passed``, ``in_domain``,
    ``domain_stage``, ``domain_reason``, ``silent_miss``. ``checks``: ``check``, ``relation``,
    ``passed``, ``detail``, ``flagged`` (members out of domain), ``silent_miss``.

    Raises:
        InputError: a formula of the checks is not in ``predictions``, or the gap column is missing.
    """
    mean_col = f"{GAP}_mean"
    if mean_col not in predictions.columns:
        raise InputError(f"the predictions have no measured band gap ({mean_col}); use a model with a measured-gap stage")
    by_formula = predictions.drop_duplicates("formula").set_index("formula", drop=False)
    missing = sorted({m.formula for c in checks for m in c.members} - set(by_formula.index))
    if missing:
        raise InputError(f"no prediction for {', '.join(missing)}")
    inside, stage, reason = _gap_domain(by_formula, gap_stages)
    domain = pd.DataFrame({"in_domain": inside, "domain_stage": stage, "domain_reason": reason}, index=by_formula.index)
    rows, summary = [], []
    for check in checks:
        formulas = [m.formula for m in check.members]
        gaps = by_formula.loc[formulas, mean_col].to_numpy(dtype=float)
        passed, detail = _relation(check, gaps)
        flagged = [f for f in formulas if not domain.loc[f, "in_domain"]]
        relation_silent = not passed and not flagged
        summary.append({"check": check.name, "relation": check.relation, "passed": passed, "detail": detail,
                        "flagged": ", ".join(flagged), "silent_miss": relation_silent})
        for m, gap in zip(check.members, gaps):
            lit = m.literature
            lower = by_formula.loc[m.formula].get(f"{GAP}_lower", np.nan)
            upper = by_formula.loc[m.formula].get(f"{GAP}_upper", np.nan)
            off = np.nan if lit is None else max(lit.low_eV - gap, gap - lit.high_eV, 0.0)
            lit_miss = bool(lit is not None and off > LITERATURE_TOLERANCE_EV)
            ok = bool(domain.loc[m.formula, "in_domain"])
            rows.append({
                "check": check.name, "formula": m.formula, "x": np.nan if m.x is None else m.x,
                "literature_bandgap_eV": np.nan if lit is None else lit.gap_eV,
                "literature_low_eV": np.nan if lit is None else lit.low_eV,
                "literature_high_eV": np.nan if lit is None else lit.high_eV,
                "citation": "" if lit is None else lit.citation,
                f"{GAP}_mean": float(gap), f"{GAP}_lower": float(lower), f"{GAP}_upper": float(upper),
                "error_eV": np.nan if lit is None else float(gap - lit.gap_eV), "literature_miss": lit_miss,
                "relation_passed": passed, "in_domain": ok,
                "domain_stage": domain.loc[m.formula, "domain_stage"], "domain_reason": domain.loc[m.formula, "domain_reason"],
                "silent_miss": bool(ok and (lit_miss or relation_silent)),
            })
    return TrendReport(rows=pd.DataFrame(rows), checks=pd.DataFrame(summary))


def trends_benchmark(model: Any = None, checks: Sequence[TrendCheck] = TREND_CHECKS, *, level: float = 0.9) -> TrendReport:
    """Predict every composition of ``checks`` with ``model`` and score them (:func:`evaluate_trends`).

    ``model``: a :class:`~nestedae_core.NestedAEModel`, a trained
    :class:`~nestedae_core.model.NestedAE`, a bundle folder or shipped model name, or None (the
    shipped default). ``level``: the prediction interval's level (e.g. 0.9 = 90 %).

    Raises:
        InputError: the model has no measured band gap.
    """
    from ..estimator import NestedAEModel
    from ..model.chain import NestedAE

    if isinstance(model, NestedAE):
        est = NestedAEModel.from_model(model)
    elif isinstance(model, NestedAEModel):
        est = model
    else:
        est = NestedAEModel.load(model)
    targets = est.targets()
    gap = targets.loc[targets["key"] == GAP]
    if gap.empty:
        raise InputError(f"model '{est.fitted.spec.name}' has no measured band gap ({GAP}); the trends benchmark compares "
                         "measured gaps with the literature: use a measured chain such as measured-default")
    stage_names = [s.name for s in est.fitted.spec.stages]
    gap_stages = stage_names[: stage_names.index(str(gap["stage"].iloc[0])) + 1]
    formulas = list(dict.fromkeys(m.formula for c in checks for m in c.members))
    predictions = est.predict(formulas, level=level)
    predictions["formula"] = formulas  # the checks' spelling (predict returns the canonical one)
    report = evaluate_trends(predictions, checks, gap_stages=gap_stages)
    report.model, report.level = est.fitted.spec.name, level
    return report
