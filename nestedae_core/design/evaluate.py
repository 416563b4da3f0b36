"""Evaluate design candidates through the whole chain, once each: predictions, objectives, constraints.

A candidate is a composition on the problem's lattice (integer steps per ion) and a device
stack. :class:`Evaluator` predicts candidates in vectorised batches
(:func:`nestedae_core.predict.predict_fractions`), remembers every result (a candidate the
optimiser proposes twice costs one model evaluation), and turns each row into
objective values (to minimise) and a constraint violation (0 = satisfied; larger = further).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from ..predict import predict_fractions
from ..query import resolve_categorical
from ..vocabulary import ETL, HTL, IONS
from .lattice import fractions_from_counts
from .problem import COMPOSITION_QUANTITIES, DesignProblem

__all__ = ["Evaluator", "Predictor", "model_quantities", "range_violation"]

#: Predicts site fractions ((n, 14), IONS order) for a stack (etl, htl): a table like
#: :func:`nestedae_core.predict.predict_fractions`'s, one row per composition in order.
Predictor = Callable[[np.ndarray, "str | None", "str | None"], pd.DataFrame]


def range_violation(problem: DesignProblem, row: dict[str, object]) -> float:
    """How far a prediction row is outside the problem's ranges: the sum of each range's overshoot, in the
    quantities' own units (0.0 = every range met; a non-finite value counts 1)."""
    total = 0.0
    for c in problem.constraints:
        v = float(row[c.column])  # type: ignore[arg-type]
        if not math.isfinite(v):
            total += 1.0
            continue
        if c.minimum is not None and v < c.minimum:
            total += c.minimum - v
        if c.maximum is not None and v > c.maximum:
            total += v - c.maximum
    return total


def model_quantities(model: NestedAE, level: float = 0.9) -> list[str]:
    """The schema keys ``model`` predicts (``bandgap_eV``, ``pce_percent`` ...), in stage order."""
    probe = predict_fractions(model, _probe_fractions(), level=level)
    return [c[: -len("_mean")] for c in probe.columns if c.endswith("_mean")]


def _probe_fractions() -> np.ndarray:
    row = np.zeros((1, len(IONS)))
    for ion in ("MA", "Pb", "I"):
        row[0, IONS.index(ion)] = 1.0
    return row


class Evaluator:
    """Predicts candidates of ``problem`` with ``model``, each (composition, stack) once.

    ``predictor`` replaces the chain's prediction (the design benchmark looks up a precomputed grid: the
    same numbers, faster). Raises :class:`InputError` at construction when an objective or constraint names a quantity the
    model does not predict, or a stack the model does not know.
    """

    def __init__(self, model: NestedAE, problem: DesignProblem, *, predictor: Predictor | None = None) -> None:
        self.model = model
        self.problem = problem
        self.predictor: Predictor = predictor or (
            lambda fr, etl, htl: predict_fractions(model, fr, etl=etl, htl=htl, level=problem.level)
        )
        probe = predict_fractions(model, _probe_fractions(), level=problem.level)  # one probe: quantities and intervals
        known = [c[: -len("_mean")] for c in probe.columns if c.endswith("_mean")]
        calibrated = any(c.endswith("_lower") for c in probe.columns)
        for item in [*problem.objectives, *problem.constraints]:
            if item.quantity in COMPOSITION_QUANTITIES:
                continue
            if item.quantity not in known:
                raise InputError(f"this model does not predict '{item.quantity}'; it predicts: {', '.join(known)}"
                                 f" (and the composition's {', '.join(COMPOSITION_QUANTITIES)})")
            if item.statistic != "mean" and not calibrated:
                raise InputError(f"'{item.label}' needs prediction intervals, and this model has none (train it with cross-validation)")
        self.stacks: list[tuple[str | None, str | None]] = self._stacks()
        self.cache: dict[tuple[int, tuple[int, ...]], dict[str, object]] = {}
        self.order: list[tuple[int, tuple[int, ...]]] = []

    def _stacks(self) -> list[tuple[str | None, str | None]]:
        p = self.problem
        stacks = [tuple(s) for s in p.stacks] if p.stacks is not None else [(p.etl, p.htl)]
        out: list[tuple[str | None, str | None]] = []
        for etl, htl in stacks:
            cats, _ = resolve_categorical(self.model, etl, htl, None)  # raises InputError on an unknown stack
            out.append((cats.get(ETL, etl), cats.get(HTL, htl)))
        return out

    @property
    def evaluations(self) -> int:
        """Model evaluations so far (distinct composition x stack)."""
        return len(self.cache)

    def evaluate(self, counts: np.ndarray, stack_index: Sequence[int]) -> list[dict[str, object]]:
        """Rows (dicts of the prediction table's columns plus ``etl``, ``htl``, ``objectives``, ``range_violation``
        and ``violation``: the range overshoot plus 1 when the problem asks for in-domain proposals and a stage
        flags the row; 0.0 = feasible) per candidate.

        ``counts``: (n, 14) lattice steps; ``stack_index``: (n,) positions in :attr:`stacks`.
        New candidates are predicted in one pass per stack; known ones come from the cache.
        """
        keys = [(int(s), tuple(int(v) for v in row)) for s, row in zip(stack_index, np.asarray(counts))]
        new = list(dict.fromkeys(k for k in keys if k not in self.cache))
        for s in sorted({k[0] for k in new}):
            group = [k for k in new if k[0] == s]
            fr = fractions_from_counts(np.array([k[1] for k in group]), self.problem.divisions)
            etl, htl = self.stacks[s]
            table = self.predictor(fr, etl, htl)
            for k, (_, row) in zip(group, table.iterrows()):
                rec = row.to_dict()
                rec["etl"], rec["htl"] = etl, htl
                rec["objectives"] = self.objective_values(rec)
                rec["range_violation"] = range_violation(self.problem, rec)
                rec["violation"] = rec["range_violation"] + (1.0 if self.problem.in_domain and not bool(rec["in_domain"]) else 0.0)
                self.cache[k] = rec
                self.order.append(k)
        return [self.cache[k] for k in keys]

    def objective_values(self, row: dict[str, object]) -> list[float]:
        """The objectives of one prediction row, each to be minimised (maximised quantities negated)."""
        out = []
        for o in self.problem.objectives:
            v = float(row[o.column])  # type: ignore[arg-type]
            out.append(-v if o.goal == "maximize" else abs(v - o.target) if o.goal == "target" else v)  # type: ignore[operator]
        return out

    def table(self) -> pd.DataFrame:
        """Every evaluated candidate in evaluation order: the prediction columns, ``etl``, ``htl``, ``violation``,
        ``evaluation`` (1-based)."""
        rows = []
        for i, k in enumerate(self.order, start=1):
            rec = dict(self.cache[k])
            objs = rec.pop("objectives")
            for j, v in enumerate(objs):  # type: ignore[arg-type]
                rec[f"objective_{j}"] = v
            rec["evaluation"] = i
            rows.append(rec)
        return pd.DataFrame(rows)
