"""Configuration of a NestedAE chain, as data.

A chain is a list of :class:`StageSpec` (one per length scale) plus the
cross-validation settings in :class:`ChainSpec`. Every spec is a pydantic model,
so it validates on construction and serialises to and from JSON (and TOML via
:func:`load_chain_spec`).

Conventions
-----------
* ``numeric_inputs`` are standardised (zero mean, unit variance over the training
  rows of each fold) before the encoder; ``categorical_inputs`` are one-hot encoded.
* A stage with ``upstream=True`` also receives the latents that the previous
  stage computes on this stage's rows (from the previous stage's own inputs,
  which therefore must be columns of this stage's table).
* The encoder's L1 penalty ``l1`` multiplies the *mean* absolute encoder weight;
  ``l2`` is Adam weight decay on all weights.
* Learning rates are per optimiser step; ``batch_size=None`` means full batch.
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..io_safe import read_small_text

__all__ = [
    "Activation",
    "TargetSpec",
    "StageSpec",
    "ChainSpec",
    "load_chain_spec",
    "trusted_chain_spec",
    "config_error_message",
    "Fidelity",
    "Bounds",
    "ResidualSpec",
    "Ceiling",
    "Product",
]

Activation = Literal["relu", "tanh", "gelu", "silu", "elu", "sigmoid", "identity"]
LossName = Literal["mae", "mse", "huber"]
#: What kind of band gap a band-gap target is: measured (films, devices), DFT-PBE or DFT-HSE06.
Fidelity = Literal["measured", "PBE", "HSE"]
#: Physical range of a target, built into its head: any real number, positive (>= 0), or a fraction in (0, 1].
Bounds = Literal["real", "positive", "fraction"]


class _Spec(BaseModel):
    # defer_build: the validators are built on the first validation, not at import (about 0.1 s of a cold command
    # that validates no configuration, e.g. a prediction of a shipped model: see trusted_chain_spec)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


class Ceiling(_Spec):
    """An upper limit of a target that depends on an upstream stage's prediction.

    The target's head predicts a fraction in (0, 1] of ``function(x)``, where ``x``
    is the previous stage's prediction of its target ``of`` on the same rows (see
    :mod:`nestedae_core.model.ceilings`): the target never exceeds the limit, by
    construction. ``function`` names a function registered with
    :func:`~nestedae_core.model.ceilings.register_ceiling`, in the target's units.
    ``link`` says how the head's output becomes the fraction (see :class:`~nestedae_core.model.nn.StageNet`).
    """

    function: str = Field(min_length=1, max_length=80, description="registered ceiling function, e.g. 'shockley_queisser_jsc'")
    of: str = Field(min_length=1, description="target column of the previous stage whose prediction is the function's argument")
    link: Literal["clamp", "logit"] = Field(
        default="clamp",
        description="how the head's output becomes the fraction of the limit: 'clamp' (the value in target units, smoothly "
                    "clamped to (0, limit]: the identity inside the data) or 'logit' (limit x sigmoid(output + offset), the "
                    "offset the mean logit of value/limit over the training rows: never saturates abruptly)",
    )


class Product(_Spec):
    """A target computed from other targets of its stage: ``scale * factor_1 * factor_2 * ...``; it has no head of its own."""

    factors: list[str] = Field(min_length=2, max_length=8, description="target columns of the same stage, multiplied")
    scale: float = Field(default=1.0, gt=0.0, description="constant factor (unit conversion)")


class TargetSpec(_Spec):
    """One property head of a stage: a column of the stage's table to predict.

    ``ceiling``: the head predicts a fraction of an upstream-dependent limit
    (value in [0, limit]); ``product``: no head, the target is the product of
    other targets of the stage (its loss trains their heads).
    """

    column: str = Field(description="column of the stage table holding the target")
    label: str = Field(default="", description="human-readable name, e.g. 'band gap'")
    unit: str = Field(default="", description="unit of the target, e.g. 'eV' or '%'")
    loss: LossName = "mae"
    weight: float = Field(default=1.0, ge=0.0)
    fidelity: Fidelity | None = Field(default=None, description="kind of band gap (measured, PBE, HSE) of a band-gap target; None for other targets")
    bounds: Bounds = Field(default="real", description="physical range built into the head: real, positive (never negative) or fraction (in (0, 1])")
    ceiling: Ceiling | None = Field(default=None, description="upper limit as a function of an upstream prediction (bounds must be 'positive')")
    product: Product | None = Field(default=None, description="the target is the product of other targets of its stage (no head of its own)")
    interval_space: Literal["auto", "identity"] = Field(
        default="auto",
        description="where its conformal residuals live: 'auto' (a target with a finite upper end, a fraction, a ceiling or "
                    "a product of such, in the logit of its fraction of that end; otherwise its units) or 'identity' (its "
                    "units, the interval then clipped to [0, upper end]): for a target whose scatter is about even in its "
                    "units over the range of its limit",
    )

    @model_validator(mode="after")
    def _check_kind(self) -> "TargetSpec":
        if self.ceiling is not None and self.product is not None:
            raise ValueError(f"target '{self.column}' cannot have both a ceiling and a product")
        if (self.ceiling is not None or self.product is not None) and self.bounds != "positive":
            raise ValueError(f"target '{self.column}' with a ceiling or a product must have bounds 'positive'")
        return self

    @property
    def has_head(self) -> bool:
        """Whether the target has a head of its own (a product target has none)."""
        return self.product is None

    @property
    def display(self) -> str:
        """Label with unit, e.g. ``band gap (eV)``."""
        name = self.label or self.column
        return f"{name} ({self.unit})" if self.unit else name


class ResidualSpec(_Spec):
    """A target predicted as a correction on the previous stage's prediction of one of its targets.

    The stage predicts ``target = upstream prediction of upstream_target + correction``
    (same units), where the correction is the stage's head output; the head's
    standardisation is fitted on the residuals ``target - upstream prediction``
    of each member's rows, so a head output of 0 is the mean residual (a global
    offset) and weight decay (``l2``) pulls the correction towards it. The
    upstream prediction is taken from the same ensemble member, and is not
    trained by this stage (the previous stage is fixed when this one trains).
    ``bound`` (target units; None: unbounded) caps the correction's distance from
    that mean smoothly: ``mean + bound * tanh((correction - mean) / bound)``.
    """

    target: str = Field(description="this stage's target column predicted as a correction")
    upstream_target: str = Field(description="target column of the previous stage whose prediction is corrected")
    bound: float | None = Field(default=None, gt=0.0, description="largest distance of the correction from its training mean (target units); None: unbounded")


class StageSpec(_Spec):
    """Architecture, data and training recipe of one stage (one autoencoder)."""

    name: str = Field(min_length=1, max_length=40, description="short stage name, e.g. 'materials'")
    dataset: str = Field(description="registry name of the stage's table (see nestedae_core.data)")
    numeric_inputs: list[str] = Field(default_factory=list)
    categorical_inputs: list[str] = Field(default_factory=list)
    upstream: bool = Field(default=False, description="consume the previous stage's latents")
    group_columns: list[str] = Field(default_factory=list, description="columns defining a group for grouped splits")
    weight_column: str | None = Field(default=None, description="column of the stage table holding each row's training weight (non-negative; 0 leaves the row out of the loss); None: every row weighs 1")
    targets: list[TargetSpec] = Field(min_length=1)
    residual: list[ResidualSpec] = Field(default_factory=list, description="targets predicted as a correction on the previous stage's prediction (needs upstream=true)")

    latent_dim: int = Field(default=12, ge=1, le=256)
    encoder_hidden: list[int] = Field(default_factory=list)
    activation: Activation = "relu"
    latent_activation: Activation = "tanh"
    head_hidden: list[int] = Field(default_factory=lambda: [100])
    head_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    decoder_hidden: list[int] = Field(default_factory=list)
    l1: float = Field(default=1e-2, ge=0.0, description="L1 penalty on the mean |encoder weight|")
    l2: float = Field(default=0.0, ge=0.0, description="weight decay")
    input_noise: float = Field(default=0.0, ge=0.0, le=2.0, description="std of Gaussian noise added to the standardised continuous inputs while training (a denoising autoencoder); 0: off")
    reconstruction_loss: Literal["mae", "mse"] = "mae"
    reconstruction_weight: float = Field(default=1.0, ge=0.0)
    categorical_weight: float = Field(default=1.0, ge=0.0, description="weight of the cross-entropy of categorical reconstructions")

    epochs: int = Field(default=2000, ge=1, le=100_000)
    batch_size: int | None = Field(default=None, ge=1, description="None: full batch")
    lr: float = Field(default=1e-2, gt=0.0, le=1.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    patience: int | None = Field(default=None, ge=1, description="early-stopping patience in epochs; None: off")
    val_fraction: float = Field(default=0.1, gt=0.0, lt=0.5, description="share of each training fold held out for early stopping")
    interval_scale: Literal["none", "disagreement", "distance"] = Field(
        default="none",
        description="prediction intervals of the stage's targets: 'none' (the CV+ quantile of the residuals), 'disagreement' "
        "(normalised conformal: residuals scaled by the fold models' disagreement, so intervals adapt to each query) or "
        "'distance' (residuals scaled by c0 + c1 x the distance to the nearest training row in the domain space, c0, c1 "
        "fitted on the out-of-fold residuals: wide where a query is far from what the fold models saw)",
    )

    @field_validator("encoder_hidden", "head_hidden", "decoder_hidden")
    @classmethod
    def _positive_layers(cls, v: list[int]) -> list[int]:
        if any(h < 1 or h > 4096 for h in v):
            raise ValueError("hidden layer sizes must be between 1 and 4096")
        return v

    @model_validator(mode="after")
    def _check_inputs(self) -> "StageSpec":
        if not self.numeric_inputs and not self.categorical_inputs and not self.upstream:
            raise ValueError(f"stage '{self.name}' has no inputs: give numeric_inputs, categorical_inputs or upstream=true")
        cols = self.numeric_inputs + self.categorical_inputs
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise ValueError(f"stage '{self.name}' lists input columns twice: {', '.join(dup)}")
        clash = sorted(set(cols) & {t.column for t in self.targets})
        if clash:
            raise ValueError(f"stage '{self.name}' uses its target as an input: {', '.join(clash)}")
        if self.weight_column is not None and self.weight_column in set(cols) | {t.column for t in self.targets}:
            raise ValueError(f"stage '{self.name}': the weight column '{self.weight_column}' is also an input or a target")
        if self.residual and not self.upstream:
            raise ValueError(f"stage '{self.name}' has residual targets but no upstream stage (set upstream=true)")
        by_column = {t.column: t for t in self.targets}
        for r in self.residual:
            if r.target not in by_column:
                raise ValueError(f"stage '{self.name}': residual target '{r.target}' is not one of its targets ({', '.join(by_column)})")
            if by_column[r.target].bounds != "real":
                raise ValueError(f"stage '{self.name}': residual target '{r.target}' must have bounds 'real'")
            if by_column[r.target].ceiling is not None or by_column[r.target].product is not None:
                raise ValueError(f"stage '{self.name}': residual target '{r.target}' may not also have a ceiling or be a product")
        done = [r.target for r in self.residual]
        if len(set(done)) != len(done):
            raise ValueError(f"stage '{self.name}' lists a residual target twice")
        columns = [t.column for t in self.targets]
        if len(set(columns)) != len(columns):
            raise ValueError(f"stage '{self.name}' lists a target twice")
        for t in self.targets:
            if t.ceiling is not None and not self.upstream:
                raise ValueError(f"target '{t.column}' has a ceiling of an upstream prediction, but stage '{self.name}' has upstream=false")
            if t.product is not None:
                for f in t.product.factors:
                    other = by_column.get(f)
                    if other is None or other.product is not None or f == t.column:
                        raise ValueError(f"product target '{t.column}': factor '{f}' must be another target of stage '{self.name}' with a head of its own")
                    if other.bounds == "real":
                        raise ValueError(f"product target '{t.column}': factor '{f}' must have bounds 'positive' or 'fraction'")
        if not any(t.has_head for t in self.targets):
            raise ValueError(f"stage '{self.name}' has no target with a head of its own")
        return self

    @property
    def head_targets(self) -> list[int]:
        """Indices of the targets that have a head of their own (not products), in head order."""
        return [j for j, t in enumerate(self.targets) if t.has_head]

    @property
    def target_columns(self) -> list[str]:
        """Columns of the stage's targets, in head order."""
        return [t.column for t in self.targets]


class ChainSpec(_Spec):
    """A NestedAE chain: stages in order of length scale, and how to cross-validate it."""

    name: str = Field(default="custom", min_length=1, max_length=60)
    description: str = ""
    stages: list[StageSpec] = Field(min_length=1, max_length=6)
    folds: int = Field(default=5, ge=2, le=20, description="k of k-fold CV; the k fold models form the ensemble")
    split: Literal["random", "grouped"] = "random"
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _check_chain(self) -> "ChainSpec":
        if self.stages[0].upstream:
            raise ValueError("the first stage cannot consume upstream latents (upstream=true)")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        for prev, st in zip(self.stages, self.stages[1:]):
            if st.residual and any(u.ceiling is not None for u in prev.targets):
                raise ValueError(f"stage '{st.name}' has residual targets, but the stage before ('{prev.name}') has ceiling targets: not supported")
            for r in st.residual:
                if r.upstream_target not in prev.target_columns:
                    raise ValueError(f"stage '{st.name}': residual on '{r.upstream_target}', which stage '{prev.name}' does not predict "
                                     f"(its targets: {', '.join(prev.target_columns)})")
        for i, st in enumerate(self.stages):
            for t in st.targets:
                if t.ceiling is None:
                    continue
                prev = self.stages[i - 1]
                src = next((u for u in prev.targets if u.column == t.ceiling.of), None)
                if src is None:
                    raise ValueError(f"target '{t.column}' of stage '{st.name}': its ceiling needs '{t.ceiling.of}', which stage '{prev.name}' does not predict")
                if any(u.ceiling is not None or u.product is not None for u in prev.targets):
                    raise ValueError(f"target '{t.column}' of stage '{st.name}': the stage before ('{prev.name}') may not have ceilings or products itself")
        return self

    @classmethod
    def field_range(cls, name: str) -> tuple[float | None, float | None]:
        """The (lowest, highest) value the field ``name`` accepts (None where unbounded), e.g. ``(2, 20)`` for ``folds``,
        so that a form can offer exactly what the configuration allows."""
        lo = hi = None
        for item in cls.model_fields[name].metadata:
            lo = getattr(item, "ge", lo) if getattr(item, "ge", None) is not None else lo
            hi = getattr(item, "le", hi) if getattr(item, "le", None) is not None else hi
        return lo, hi

    def with_updates(self, *, stages: Sequence[Mapping[str, Any] | None] | Mapping[str, Mapping[str, Any]] | None = None, **fields: Any) -> "ChainSpec":
        """A validated copy with some fields replaced; this spec is unchanged.

        ``fields`` replace chain-level fields (``folds``, ``split``, ``seed``, ``name`` ...).
        ``stages`` updates stages: a list of per-stage dicts merged by position
        (``None`` or ``{}`` leaves a stage as it is; a list shorter than the chain
        leaves the rest alone), or a mapping from stage name to its updates.
        Raises :class:`ConfigError` listing every problem.
        """
        data = self.model_dump()
        unknown = sorted(set(fields) - set(data))
        if unknown:
            raise ConfigError(f"invalid configuration: unknown chain field(s) {', '.join(unknown)}")
        data.update(fields)
        if stages is not None:
            if isinstance(stages, Mapping):
                names = [s["name"] for s in data["stages"]]
                missing = sorted(set(stages) - set(names))
                if missing:
                    raise ConfigError(f"invalid configuration: no stage named {', '.join(missing)}; stages: {', '.join(names)}")
                pairs = [(names.index(k), v) for k, v in stages.items()]
            else:
                if len(stages) > len(data["stages"]):
                    raise ConfigError(f"invalid configuration: {len(stages)} stage updates for a chain of {len(data['stages'])} stages")
                pairs = list(enumerate(stages))
            for i, upd in pairs:
                data["stages"][i].update(dict(upd or {}))
        try:
            return ChainSpec.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(config_error_message(exc)) from None

    def to_json(self) -> str:
        """JSON text of this spec (indent 2)."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ChainSpec":
        """Parse and validate JSON text; raises :class:`ConfigError` with every problem listed."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigError(config_error_message(exc)) from None


def config_error_message(exc: ValidationError) -> str:
    """One-line summary of a pydantic validation error: 'field: problem; ...'."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc or 'config'}: {err.get('msg', 'invalid')}")
    return "invalid configuration: " + "; ".join(parts)


#: Largest config file read (bytes); a chain spec is a few kB.
MAX_CONFIG_BYTES = 1_000_000
#: Deepest nesting of tables/lists accepted in a config file.
MAX_CONFIG_DEPTH = 32


def _depth(obj: Any) -> int:
    """Nesting depth of dicts/lists (iterative: a deep document cannot exhaust the stack)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        item, d = todo.pop()
        if isinstance(item, dict):
            items = list(item.values())
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, d)
        if d > MAX_CONFIG_DEPTH:
            return d
        todo.extend((v, d + 1) for v in items)
    return deepest


def load_chain_spec(path: str | Path, base: ChainSpec | None = None) -> ChainSpec:
    """Read a chain spec from a ``.json`` or ``.toml`` file.

    If ``base`` is given, the file may hold a partial spec: top-level keys replace
    ``base``'s, and ``stages`` may be a list of partial stage tables merged into
    ``base``'s stages by position. Raises :class:`ConfigError` on any problem.
    """
    p = Path(path)
    kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
    raw = read_small_text(p, MAX_CONFIG_BYTES, what="config file", hint=f"give a UTF-8 {kind} file of the chain spec",
                          expected="a chain spec is a few kB", error=ConfigError)
    if "\x00" in raw:
        raise ConfigError(f"config file {p} is binary, not {kind} text")
    try:
        data = tomllib.loads(raw) if kind == "TOML" else json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {p} is not valid {kind}: {first}") from None
    except RecursionError:
        raise ConfigError(f"config file {p} is nested too deeply to be a chain spec") from None
    if _depth(data) > MAX_CONFIG_DEPTH:
        raise ConfigError(f"config file {p} is nested more than {MAX_CONFIG_DEPTH} levels deep; a chain spec needs a few")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a table/object at the top level")
    if base is not None:
        merged = base.model_dump()
        stages = data.pop("stages", None)
        merged.update(data)
        if stages is not None:
            if not isinstance(stages, list):
                raise ConfigError("'stages' must be a list of stage tables")
            for i, st in enumerate(stages):
                if i < len(merged["stages"]) and isinstance(st, dict):
                    merged["stages"][i].update(st)
                else:
                    merged["stages"].append(st)
        data = merged
    try:
        return ChainSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(config_error_message(exc)) from None


def _construct(cls: type[_Spec], data: Any, nested: Mapping[str, Any] | None = None) -> Any:
    """``cls.model_construct`` of ``data`` (a dict) with its ``nested`` fields built likewise; KeyError for a key
    ``cls`` does not have or a value that is not a dict."""
    if not isinstance(data, dict):
        raise KeyError(f"{cls.__name__} needs an object")
    unknown = set(data) - set(cls.model_fields)
    if unknown:
        raise KeyError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    values = dict(data)
    for name, build in (nested or {}).items():
        if values.get(name) is not None:
            values[name] = build(values[name])
    return cls.model_construct(**values)


def trusted_chain_spec(data: Mapping[str, Any]) -> ChainSpec:
    """The :class:`ChainSpec` of a shipped model bundle's ``config.json`` (what :meth:`ChainSpec.model_dump` wrote),
    built without validation (``model_construct``), the same spec :meth:`ChainSpec.model_validate` gives.

    Only for a bundle the package ships, its files checked against their SHA-256 (``nestedae_core.store``); a user's
    file is validated. KeyError when ``data`` has a key a spec does not know (then validate it instead).
    """
    def target(t: Any) -> TargetSpec:
        return _construct(TargetSpec, t, {"ceiling": lambda c: _construct(Ceiling, c), "product": lambda p: _construct(Product, p)})

    def stage(s: Any) -> StageSpec:
        return _construct(StageSpec, s, {"targets": lambda ts: [target(t) for t in ts],
                                         "residual": lambda rs: [_construct(ResidualSpec, r) for r in rs]})

    return _construct(ChainSpec, dict(data), {"stages": lambda ss: [stage(s) for s in ss]})
