"""What a design asks, as data: :class:`DesignProblem` and its parts.

A design problem names the quantities to optimise (objectives), the ranges they and
other quantities must keep (constraints), which ions each site may hold, the lattice the
site fractions live on (``resolution``: 0.01, 1/64 ...), the device stack (fixed, or
chosen among stacks the model knows), a budget of model evaluations and a seed. It
is a pydantic model, so it reads from and writes to JSON/TOML like every other
configuration of the project.

Quantities are named by the one output schema (:mod:`nestedae_core.schema`):
``bandgap_eV`` (measured gap, eV), ``pce_percent`` (%), ``voc_V`` ... with a
statistic ``mean``, ``lower`` or ``upper`` (the ends of the prediction interval);
plus the composition's own ``tolerance_factor`` and ``octahedral_factor``
(dimensionless, computed from the ionic radii, no model needed).
"""
from __future__ import annotations

import math
import os
import stat
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError, InputError
from ..vocabulary import A_SITE_IONS, B_SITE_IONS, SITE_OF_ION, X_SITE_IONS

__all__ = [
    "COMPOSITION_QUANTITIES",
    "Objective",
    "QuantityRange",
    "DesignProblem",
    "lattice_divisions",
]

#: Quantities of the composition itself (no model): Goldschmidt tolerance factor and octahedral factor.
COMPOSITION_QUANTITIES: tuple[str, ...] = ("tolerance_factor", "octahedral_factor")

Statistic = Literal["mean", "lower", "upper"]


class Objective(BaseModel):
    """One objective: maximise or minimise a quantity's statistic, or bring its mean close to a target.

    ``quantity`` is a schema key (``pce_percent``, ``bandgap_eV``, ``decomposition_energy_eV_per_fu`` ...);
    ``statistic`` picks the mean or an end of the prediction interval (``lower`` = a pessimistic PCE);
    with ``goal="target"``, the objective is ``|mean - target|`` (same unit as the quantity), minimised.
    """

    model_config = ConfigDict(extra="forbid")

    quantity: str
    goal: Literal["maximize", "minimize", "target"] = "maximize"
    statistic: Statistic = "mean"
    target: float | None = None

    @model_validator(mode="after")
    def _target_given(self) -> "Objective":
        if self.goal == "target" and (self.target is None or not math.isfinite(self.target)):
            raise ValueError(f"objective on {self.quantity}: goal 'target' needs a finite target value")
        if self.goal != "target" and self.target is not None:
            raise ValueError(f"objective on {self.quantity}: a target value goes with goal 'target' only")
        return self

    @property
    def column(self) -> str:
        """The column of a prediction table this objective reads (``<quantity>_<statistic>``, or the factor)."""
        if self.quantity in COMPOSITION_QUANTITIES:
            return self.quantity
        return f"{self.quantity}_{'mean' if self.goal == 'target' else self.statistic}"

    @property
    def label(self) -> str:
        """Short text, e.g. ``maximize pce_percent (lower)`` or ``bandgap_eV close to 1.35``."""
        if self.goal == "target":
            return f"{self.quantity} close to {self.target:g}"
        return f"{self.goal} {self.quantity}" + ("" if self.statistic == "mean" else f" ({self.statistic})")


class QuantityRange(BaseModel):
    """A constraint: ``minimum <= quantity's statistic <= maximum`` (either end may be open)."""

    model_config = ConfigDict(extra="forbid")

    quantity: str
    statistic: Statistic = "mean"
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "QuantityRange":
        if self.minimum is None and self.maximum is None:
            raise ValueError(f"range on {self.quantity}: give a minimum, a maximum or both")
        for v in (self.minimum, self.maximum):
            if v is not None and not math.isfinite(v):
                raise ValueError(f"range on {self.quantity}: bounds must be finite numbers")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"range on {self.quantity}: minimum {self.minimum:g} is above maximum {self.maximum:g}")
        return self

    @property
    def column(self) -> str:
        """The column of a prediction table this range reads."""
        return self.quantity if self.quantity in COMPOSITION_QUANTITIES else f"{self.quantity}_{self.statistic}"

    @property
    def label(self) -> str:
        """Short text, e.g. ``1.3 <= bandgap_eV <= 1.4``."""
        lo = "" if self.minimum is None else f"{self.minimum:g} <= "
        hi = "" if self.maximum is None else f" <= {self.maximum:g}"
        return f"{lo}{self.quantity}{'' if self.statistic == 'mean' else f' ({self.statistic})'}{hi}"


def lattice_divisions(resolution: float) -> int:
    """The number of steps ``m`` of a fraction resolution ``1/m`` (0.01 -> 100, 1/64 -> 64).

    Raises :class:`InputError` unless ``resolution`` is 1/m for an integer m from 1 to 1000.
    """
    if not isinstance(resolution, (int, float)) or not math.isfinite(resolution) or not 0 < resolution <= 1:
        raise InputError(f"resolution {resolution!r} must be a number in (0, 1], e.g. 0.01 or 0.015625 (1/64)")
    m = round(1.0 / resolution)
    if m < 1 or m > 1000 or abs(1.0 / m - resolution) > 1e-9 * max(1.0, 1.0 / resolution):
        raise InputError(f"resolution {resolution:g} must be 1/m for a whole number m from 1 to 1000 (e.g. 0.05, 0.01, 1/64)")
    return int(m)


#: Largest design-problem file read (bytes).
MAX_PROBLEM_BYTES = 1_000_000

_SITES = {"A": A_SITE_IONS, "B": B_SITE_IONS, "X": X_SITE_IONS}


class DesignProblem(BaseModel):
    """An inverse-design problem over perovskite compositions ABX3.

    Fractions: each site's fractions are whole multiples of ``resolution`` and sum to
    one exactly (by construction of the search space, see :mod:`.lattice`); ``max_ions``
    caps how many ions share a site; ``pb_free`` drops Pb from the B site;
    ``max_pb`` caps the Pb fraction of the B site (mol/mol).

    Model side: ``objectives`` (one or several), ``constraints`` (ranges on predicted
    quantities or on the tolerance and octahedral factors), ``in_domain`` (every stage's
    domain check must pass for a proposal to be ranked), the device stack (``etl``/``htl``
    fixed, or ``stacks``: a list of ``(etl, htl)`` pairs the optimiser chooses among; none:
    the model's most common stack), ``level`` of the prediction intervals,
    ``max_evals`` model evaluations (distinct compositions x stacks) and ``seed``.
    """

    model_config = ConfigDict(extra="forbid")

    objectives: list[Objective] = Field(default_factory=lambda: [Objective(quantity="pce_percent")], min_length=1, max_length=4)
    constraints: list[QuantityRange] = Field(default_factory=list, max_length=16)
    a_ions: list[str] = Field(default_factory=lambda: ["Cs", "FA", "MA"])
    b_ions: list[str] = Field(default_factory=lambda: ["Pb", "Sn"])
    x_ions: list[str] = Field(default_factory=lambda: ["Br", "I"])
    max_ions: int = Field(3, ge=1, le=6)
    pb_free: bool = False
    max_pb: float | None = Field(None, ge=0.0, le=1.0)
    resolution: float = 0.01
    in_domain: bool = True
    etl: str | None = None
    htl: str | None = None
    stacks: list[tuple[str, str]] | None = None
    level: float = Field(0.9, gt=0.0, lt=1.0)
    max_evals: int = Field(500, ge=10, le=100_000)
    batch_size: int = Field(5, ge=1, le=1000)
    seed: int = 0

    @field_validator("a_ions", "b_ions", "x_ions")
    @classmethod
    def _known_ions(cls, ions: list[str], info):  # type: ignore[no-untyped-def]
        site = {"a_ions": "A", "b_ions": "B", "x_ions": "X"}[info.field_name]
        seen: list[str] = []
        for ion in ions:
            if ion not in SITE_OF_ION:
                raise ValueError(f"unknown ion {ion!r}: the {site} site takes {', '.join(_SITES[site])}")
            if SITE_OF_ION[ion] != site:
                raise ValueError(f"{ion} belongs to the {SITE_OF_ION[ion]} site, not the {site} site")
            if ion in seen:
                raise ValueError(f"{ion} is listed twice for the {site} site")
            seen.append(ion)
        return ions

    @model_validator(mode="after")
    def _consistent(self) -> "DesignProblem":
        lattice_divisions(self.resolution)
        if not self.site_ions("A") or not self.site_ions("X"):
            raise ValueError("every site needs at least one allowed ion")
        if not self.site_ions("B"):
            raise ValueError("no B-site ion is left: Pb-free was asked and Pb was the only B-site ion allowed; add Sn or Ge")
        if self.max_pb is not None and self.site_ions("B") == ["Pb"] and self.max_pb < 1.0:
            raise ValueError(f"at most {self.max_pb:g} Pb on the B site, but Pb is the only B-site ion allowed; add Sn or Ge")
        if self.stacks is not None and (self.etl is not None or self.htl is not None):
            raise ValueError("give either a fixed stack (etl/htl) or a list of stacks to choose among, not both")
        if self.stacks is not None and not self.stacks:
            raise ValueError("the list of stacks to choose among is empty")
        if len({o.column for o in self.objectives if o.goal != "target"} | {o.quantity for o in self.objectives if o.goal == "target"}) < len(self.objectives):
            raise ValueError("the same objective is given twice")
        by_column: dict[str, tuple[float, float]] = {}
        for c in self.constraints:
            lo0, hi0 = by_column.get(c.column, (-math.inf, math.inf))
            lo = max(lo0, -math.inf if c.minimum is None else c.minimum)
            hi = min(hi0, math.inf if c.maximum is None else c.maximum)
            if lo > hi:
                raise ValueError(f"the constraints on {c.column} contradict each other: no value is at least {lo:g} and at most {hi:g}")
            by_column[c.column] = (lo, hi)
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, flag: str = "--problem") -> "DesignProblem":
        """Read a problem from a JSON file (a regular file of at most 1 MB); :class:`ConfigError` names what is wrong."""
        p = Path(path)
        try:
            st = p.stat()
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"{flag} {p} is not a regular file; give a JSON file")
            if st.st_size > MAX_PROBLEM_BYTES:
                raise ConfigError(f"{flag} {p} is {st.st_size:,} bytes; a design problem is at most {MAX_PROBLEM_BYTES:,} bytes of JSON")
            text = p.read_bytes()[: MAX_PROBLEM_BYTES + 1].decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{flag} {p} does not exist") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{flag} {p} is not UTF-8 text; give a JSON file") from None
        except OSError as exc:
            raise ConfigError(f"{flag} {p}: {exc.strerror or exc}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            raise ConfigError(f"{flag} {p}: {where + ': ' if where else ''}{msg}") from None

    def site_ions(self, site: str) -> list[str]:
        """The ions the search may put on ``site`` ('A', 'B' or 'X'), Pb removed when ``pb_free``."""
        ions = {"A": self.a_ions, "B": self.b_ions, "X": self.x_ions}[site]
        return [i for i in ions if not (self.pb_free and i == "Pb")]

    @property
    def divisions(self) -> int:
        """Lattice steps per site (``1/resolution``)."""
        return lattice_divisions(self.resolution)

    @property
    def max_pb_steps(self) -> int | None:
        """The largest Pb amount in lattice steps (``floor(max_pb * divisions)``), None when unlimited."""
        if self.pb_free:
            return 0
        if self.max_pb is None:
            return None
        return int(math.floor(Fraction(self.max_pb).limit_denominator(10**6) * self.divisions + Fraction(1, 10**9)))
