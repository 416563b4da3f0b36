"""The search space of a hyperparameter sweep, as data.

A :class:`SearchSpace` is a list of :class:`ParamSpec`: which field of the chain
each sampled value sets (a stage's latent size, its head or encoder width, the
learning rate, a scale on every stage's epochs, the training seed), its range
and whether it is sampled on a log scale. It validates like every config of
this library (pydantic), serialises to JSON (it is stored with the study, so a
resumed sweep samples the same space) and is applied to a
:class:`~nestedae_core.model.config.ChainSpec` by :meth:`SearchSpace.apply`.

:func:`default_space` gives the space used when none is given: for each stage
its latent size (half to twice the preset's) and head width (16 to 256), one
learning rate for every stage (1e-3 to 3e-2, log), a scale of 0.25 to 1 on
every stage's epochs and the training seed. The cross-validation folds never
depend on the sampled seed (see :mod:`.objective`), so trials stay comparable.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..io_safe import read_small_text
from ..model.config import ChainSpec, config_error_message

__all__ = ["ParamField", "ParamSpec", "SearchSpace", "default_space", "STAGE_FIELDS", "MAX_SPACE_BYTES"]

#: Largest search-space file read (bytes); a space is a few kB.
MAX_SPACE_BYTES = 1_000_000

#: What a sampled value sets. ``head_width`` / ``encoder_width``: one hidden layer
#: of that many units (an encoder width of 0 means no hidden layer);
#: ``epochs_scale``: every chosen stage's epochs are multiplied by it (rounded,
#: at least 1); ``seed``: the chain's training seed (weights, batches), never its folds.
ParamField = Literal["latent_dim", "head_width", "encoder_width", "lr", "l1", "epochs_scale", "seed"]
#: Fields that belong to a stage (the others belong to the chain).
STAGE_FIELDS: frozenset[str] = frozenset({"latent_dim", "head_width", "encoder_width", "lr", "l1", "epochs_scale"})
_INT_FIELDS = frozenset({"latent_dim", "head_width", "encoder_width", "seed"})


class ParamSpec(BaseModel):
    """One sampled hyperparameter.

    ``name`` is the parameter's name in the Optuna study (unique in a space);
    ``stage`` restricts a stage field to one stage (None: every stage);
    ``low``/``high`` bound a numeric range (inclusive; ``log`` samples it on a log
    scale); ``choices`` lists the allowed values instead of a range.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    field: ParamField
    stage: str | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float] | None = None

    @model_validator(mode="after")
    def _check(self) -> "ParamSpec":
        if self.choices is not None:
            if not self.choices:
                raise ValueError(f"parameter '{self.name}': choices must not be empty")
            if self.low is not None or self.high is not None:
                raise ValueError(f"parameter '{self.name}': give either choices or low/high, not both")
            values = self.choices
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"parameter '{self.name}': give low and high (or choices)")
            if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
                raise ValueError(f"parameter '{self.name}': low must not exceed high (got {self.low} > {self.high})")
            if self.log and self.low <= 0:
                raise ValueError(f"parameter '{self.name}': a log-scale range needs low > 0")
            values = [self.low, self.high]
        if self.is_int and any(float(v) != int(v) for v in values):
            raise ValueError(f"parameter '{self.name}': {self.field} takes whole numbers")
        lowest = 0 if self.field in ("encoder_width", "seed", "l1") else 1 if self.is_int else 0
        if any(v < lowest or (v <= 0 and self.field in ("lr", "epochs_scale")) for v in values):
            raise ValueError(f"parameter '{self.name}': {self.field} must be {'positive' if self.field in ('lr', 'epochs_scale') else f'at least {lowest}'}")
        if self.stage is not None and self.field not in STAGE_FIELDS:
            raise ValueError(f"parameter '{self.name}': {self.field} belongs to the chain, not to a stage")
        return self

    @property
    def is_int(self) -> bool:
        """True for whole-number fields (sizes, seed)."""
        return self.field in _INT_FIELDS

    @property
    def largest(self) -> float:
        """The largest value this parameter can take."""
        return max(self.choices) if self.choices is not None else float(self.high)  # type: ignore[arg-type]

    def suggest(self, trial: Any) -> float:
        """Sample this parameter from an Optuna trial (``trial.suggest_*``)."""
        if self.choices is not None:
            choices = [int(c) if self.is_int else float(c) for c in self.choices]
            return trial.suggest_categorical(self.name, choices)
        if self.is_int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]


class SearchSpace(BaseModel):
    """The hyperparameters a sweep samples, applied to a base chain spec."""

    model_config = ConfigDict(extra="forbid")

    params: list[ParamSpec] = Field(min_length=1, max_length=40)

    @model_validator(mode="after")
    def _unique(self) -> "SearchSpace":
        names = [p.name for p in self.params]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"parameter names must be unique, repeated: {', '.join(dup)}")
        return self

    @classmethod
    def from_json(cls, text: str) -> "SearchSpace":
        """Parse and validate JSON text; raises :class:`ConfigError` listing every problem."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigError(config_error_message(exc).replace("invalid configuration", "invalid search space", 1)) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, flag: str = "--space") -> "SearchSpace":
        """Read and validate a JSON search-space file.

        Only a regular file of at most :data:`MAX_SPACE_BYTES` is read (a device such
        as ``/dev/zero``, a fifo or a huge file is refused before reading).

        Raises:
            ConfigError: the file is missing, not a regular file, too large, not UTF-8
                text, or not a valid space (the message names ``flag`` and the file).
        """
        p = Path(path)
        text = read_small_text(p, MAX_SPACE_BYTES, what=flag, hint="give a JSON file of the search space",
                               expected="a search space is a small JSON file", error=ConfigError)
        try:
            return cls.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{flag} {p}: {exc}") from None

    def check(self, base: ChainSpec) -> None:
        """Raise :class:`ConfigError` when a parameter names a stage ``base`` does not have."""
        names = [s.name for s in base.stages]
        for p in self.params:
            if p.stage is not None and p.stage not in names:
                raise ConfigError(f"invalid search space: parameter '{p.name}' names stage '{p.stage}'; stages: {', '.join(names)}")

    def suggest(self, trial: Any) -> dict[str, float]:
        """Sample every parameter from an Optuna trial: name -> value."""
        return {p.name: p.suggest(trial) for p in self.params}

    def apply(self, base: ChainSpec, values: dict[str, Any]) -> ChainSpec:
        """``base`` with the sampled ``values`` (name -> value) set; raises :class:`ConfigError`."""
        self.check(base)
        missing = [p.name for p in self.params if p.name not in values]
        if missing:
            raise ConfigError(f"no value for the sweep parameter(s) {', '.join(missing)}")
        updates: dict[str, dict[str, Any]] = {s.name: {} for s in base.stages}
        chain: dict[str, Any] = {}
        for p in self.params:
            v = values[p.name]
            if p.field == "seed":
                chain["seed"] = int(v)
                continue
            for st in base.stages:
                if p.stage is not None and st.name != p.stage:
                    continue
                upd = updates[st.name]
                if p.field == "latent_dim":
                    upd["latent_dim"] = int(v)
                elif p.field == "head_width":
                    upd["head_hidden"] = [int(v)]
                elif p.field == "encoder_width":
                    upd["encoder_hidden"] = [int(v)] if int(v) > 0 else []
                elif p.field == "lr":
                    upd["lr"] = float(v)
                elif p.field == "l1":
                    upd["l1"] = float(v)
                elif p.field == "epochs_scale":
                    upd["epochs"] = max(1, int(round(st.epochs * float(v))))
        return base.with_updates(stages={k: v for k, v in updates.items() if v} or None, **chain)

    def largest(self, base: ChainSpec) -> ChainSpec:
        """``base`` with every parameter at its largest value: the biggest network and longest training."""
        return self.apply(base, {p.name: p.largest for p in self.params})

    def describe(self) -> list[dict[str, Any]]:
        """One row per parameter: name, field, stage, range or choices, scale."""
        return [
            {
                "name": p.name,
                "sets": p.field,
                "stage": p.stage or "every stage" if p.field in STAGE_FIELDS else "chain",
                "values": ", ".join(f"{c:g}" for c in p.choices) if p.choices is not None else f"{p.low:g} to {p.high:g}",
                "scale": "log" if p.log else "linear",
            }
            for p in self.params
        ]


def default_space(base: ChainSpec) -> SearchSpace:
    """The default search space of a chain: per-stage latent size and head width, learning rate, epochs scale, seed."""
    params: list[ParamSpec] = []
    for st in base.stages:
        lo, hi = max(2, st.latent_dim // 2), min(256, max(st.latent_dim * 2, 4))
        params.append(ParamSpec(name=f"{st.name}.latent_dim", field="latent_dim", stage=st.name, low=lo, high=hi))
        params.append(ParamSpec(name=f"{st.name}.head_width", field="head_width", stage=st.name, low=16, high=256, log=True))
    params.append(ParamSpec(name="lr", field="lr", low=1e-3, high=3e-2, log=True))
    params.append(ParamSpec(name="epochs_scale", field="epochs_scale", low=0.25, high=1.0))
    params.append(ParamSpec(name="seed", field="seed", low=0, high=9999))
    return SearchSpace(params=params)
