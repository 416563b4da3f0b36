"""Inverse design: from a target (a gap window, the highest PCE, stability) to ranked compositions.

* :mod:`.problem`: :class:`DesignProblem`, the question as data;
* :mod:`.lattice`: the search space, site fractions on a lattice that sum to one by construction;
* :mod:`.evaluate`: candidates through the whole chain, each once, with intervals and domain checks;
* :mod:`.samplers`: the optimisers (BoTorch on the lattice, :mod:`.bayes`; Optuna's GP and TPE, pymoo's GA, random
  search) behind one ask/tell interface;
* :mod:`.optimise`: :func:`run_design` (``auto`` by default), and the ranking of proposals.
"""
from __future__ import annotations

from .evaluate import Evaluator, model_quantities
from .lattice import counts_from_unit, fractions_from_counts, parameter_names
from .optimise import SAMPLERS, DesignInfeasible, DesignResult, live_rows, pareto_ranks, rank_proposals, run_design
from .proposals import measured_reference, proposal_table
from .problem import COMPOSITION_QUANTITIES, DesignProblem, Objective, QuantityRange, lattice_divisions

__all__ = [
    "COMPOSITION_QUANTITIES",
    "DesignProblem",
    "Objective",
    "QuantityRange",
    "lattice_divisions",
    "parameter_names",
    "counts_from_unit",
    "fractions_from_counts",
    "Evaluator",
    "model_quantities",
    "SAMPLERS",
    "DesignInfeasible",
    "DesignResult",
    "run_design",
    "rank_proposals",
    "pareto_ranks",
    "live_rows",
    "proposal_table",
    "measured_reference",
]
