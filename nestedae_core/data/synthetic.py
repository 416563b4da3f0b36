"""A synthetic two-stage (materials -> devices) data set with known ground truth.

It mimics the perovskite chain that NestedAE models: stage 1 maps atomic-scale
descriptors of a *material* to a property (think band gap, eV); stage 2 maps each
*device* (one material plus its own features) to a device property (think power
conversion efficiency, %). Because every function is known, the data set is used
to teach interpretability (the dashboard's "Learn" page) and to test that a model
recovers the true structure and that attributions rank relevant inputs first.

The nested functions
--------------------
With ``p = n_material_features``, ``r = n_relevant``, ``K = n_factors`` and
``m = n_device_numeric`` (defaults 10, 5, 3, 3)::

    x0 .. x{p-1} ~ N(0, 1), independent. x0 .. x{r-1} are relevant, the rest is noise.
    x_dup = 0.98 x0 + 0.199 u, u ~ N(0, 1)      (only with correlated_pair=True;
                                                 no equation uses it)
    z_k = tanh(sum_j W[k, j] x_j), k = 1..K     (W: K x r, sparse, rows of unit
                                                 norm, condition number <= 4, every
                                                 relevant feature loads on a factor)
    true_y1 = 1.6 + sum_k a_k z_k + 0.15 z1^2 [+ 0.1 z1*z2 when K >= 2]
              (a = 0.4, -0.3, 0.25, 0.2, -0.15, 0.12 truncated to K)
    y1 = true_y1 + e1, e1 ~ N(0, noise^2)

    material of a device ~ Categorical(p_i proportional to 1/rank_i), rank a random
                           permutation: a few materials are used by many devices
    d0 .. d{m-1} ~ N(0, 1), independent. d0 and d1 are relevant, the rest is noise.
    stack ~ uniform over device_categories, additive effect s(stack) evenly spaced
            in [-1.5, 1.5] in the order given (0 when there is one category)
    y2 = 10 + 8 exp(-((true_y1 - 1.55) / 0.3)^2) + z_K + 1.2 d0 - 0.8 tanh(1.5 d1)
         + s(stack) + e2, e2 ~ N(0, noise^2)

The exact strings, with the seed's own loadings, are in
:attr:`GroundTruth.equations`; they are the documentation *and* the computation
(the loadings are rounded to two decimals before use, so the printed equation is
exact). The device's efficiency depends on its material only through the factors
(via the noise-free ``true_y1`` and ``z_K``), never through the noise ``e1``.

What a learner can and cannot recover
-------------------------------------
* **Can**: which material features matter (x0 .. x{r-1}) and which do not; the
  *subspace* spanned by the K factors (a linear map of the relevant features
  explains ~93 % of each factor's variance, the rest is the tanh); the number of
  informative latents (K); the bell-shaped dependence of y2 on y1, the effects
  of d0, d1 and of the stack; that d2.. are irrelevant.
* **Cannot**: the individual factors z1 .. zK themselves. Any invertible mixing
  of the factors predicts y1 equally well, so an autoencoder's latents match the
  true factors only up to an (approximately linear) invertible transformation,
  at best up to rotation and scale. Compare subspaces (canonical correlations),
  not individual latent-factor pairs.
* **Cannot**: tell x0 from x_dup when ``correlated_pair=True``. The data cannot
  distinguish a near copy from the original, so Shapley values (and any
  attribution) split the credit of x0 between the two in a model-dependent way;
  the pair's *sum* is what is identifiable. ``x_dup`` is listed in
  :attr:`GroundTruth.proxy_material_features`, in neither the relevant nor the
  irrelevant list: causally irrelevant, statistically informative.
* Noise features (and d2 ..) should get near-zero attributions; non-zero values
  there measure the model's overfitting, not structure.
* Prediction error cannot go below ``noise`` (the irreducible Gaussian noise).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "MATERIAL_TARGET",
    "DEVICE_TARGET",
    "TRUTH_PREFIX",
    "MAX_FACTORS",
    "SyntheticConfig",
    "GroundTruth",
    "SyntheticData",
    "generate",
    "material_feature_names",
    "device_feature_names",
    "true_factor_names",
]

#: Target column of the materials table.
MATERIAL_TARGET = "y1"
#: Target column of the devices table.
DEVICE_TARGET = "y2"
#: Prefix of every column that holds hidden truth (never a model input).
TRUTH_PREFIX = "true_"
#: Largest supported number of true latent factors.
MAX_FACTORS = 6

DUP_FEATURE = "x_dup"
DUP_CORRELATION = 0.98

# Constants of the nested functions (documented in the module docstring).
_Y1_INTERCEPT = 1.6
_Y1_LINEAR = (0.40, -0.30, 0.25, 0.20, -0.15, 0.12)
_Y1_SQUARE = 0.15
_Y1_INTERACTION = 0.10
_Y2_INTERCEPT = 10.0
_Y2_PEAK_HEIGHT = 8.0
_Y2_OPTIMAL_Y1 = 1.55
_Y2_PEAK_WIDTH = 0.3
_Y2_FACTOR = 1.0
_Y2_D0 = 1.2
_Y2_D1 = -0.8
_Y2_D1_SCALE = 1.5
_STACK_EFFECT_SPAN = 1.5
_N_RELEVANT_DEVICE_NUMERIC = 2
_MAX_CONDITION = 4.0


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")


@dataclass
class SyntheticConfig:
    """Size, structure and noise of the synthetic data set.

    Attributes:
        n_materials: number of materials (rows of the stage-1 table).
        n_devices: number of devices (rows of the stage-2 table).
        n_material_features: number of material features ``x0 ..``.
        n_factors: number of true latent factors (1 .. 6, at most ``n_relevant``).
        n_relevant: how many material features (``x0 .. x{n_relevant-1}``) drive the
            factors; the others are pure noise.
        n_device_numeric: number of numeric device features ``d0 ..`` (>= 2); d0 and
            d1 matter, the rest are pure noise.
        device_categories: levels of the categorical device feature ``stack``,
            each with a known additive effect on y2.
        noise: standard deviation of the Gaussian noise added to y1 and to y2, in
            each property's units (>= 0).
        correlated_pair: add ``x_dup``, a near copy of x0 (correlation ~0.98) that
            no equation uses, to show how attributions split credit.
        seed: seed of the local random generator (>= 0).
        dup_correlation: correlation of ``x_dup`` with x0, in [0, 1) (default 0.98).

    Raises:
        ConfigError: at construction when a value is out of range.
    """

    n_materials: int = 400
    n_devices: int = 1500
    n_material_features: int = 10
    n_factors: int = 3
    n_relevant: int = 5
    n_device_numeric: int = 3
    device_categories: tuple[str, ...] = ("layer_A", "layer_B", "layer_C")
    noise: float = 0.05
    correlated_pair: bool = False
    seed: int = 0
    dup_correlation: float = DUP_CORRELATION

    def __post_init__(self) -> None:
        if isinstance(self.device_categories, (list, tuple)):
            self.device_categories = tuple(self.device_categories)
        self.validate()

    def validate(self) -> None:
        """Check every value; raise :class:`ConfigError` naming the first bad one."""
        _check_int("n_materials", self.n_materials, 1)
        _check_int("n_devices", self.n_devices, 1)
        _check_int("n_material_features", self.n_material_features, 1)
        _check_int("n_factors", self.n_factors, 1, MAX_FACTORS)
        _check_int("n_relevant", self.n_relevant, 1)
        if self.n_relevant > self.n_material_features:
            raise ConfigError(
                f"n_relevant ({self.n_relevant}) must not exceed n_material_features "
                f"({self.n_material_features})"
            )
        if self.n_factors > self.n_relevant:
            raise ConfigError(
                f"n_factors ({self.n_factors}) must not exceed n_relevant ({self.n_relevant}): "
                "each factor needs its own relevant features"
            )
        _check_int("n_device_numeric", self.n_device_numeric, _N_RELEVANT_DEVICE_NUMERIC)
        cats = self.device_categories
        if not isinstance(cats, tuple) or len(cats) == 0:
            raise ConfigError(f"device_categories must be a non-empty tuple of names, got {cats!r}")
        if not all(isinstance(c, str) and c.strip() for c in cats):
            raise ConfigError(f"device_categories must be non-empty strings, got {cats!r}")
        if len(set(cats)) != len(cats):
            raise ConfigError(f"device_categories must be unique, got {cats!r}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float, np.floating, np.integer)):
            raise ConfigError(f"noise must be a number, got {self.noise!r}")
        if not math.isfinite(float(self.noise)) or self.noise < 0:
            raise ConfigError(f"noise must be a finite number >= 0, got {self.noise}")
        if not isinstance(self.correlated_pair, (bool, np.bool_)):
            raise ConfigError(f"correlated_pair must be true or false, got {self.correlated_pair!r}")
        _check_int("seed", self.seed, 0)
        if isinstance(self.dup_correlation, bool) or not isinstance(self.dup_correlation, (int, float, np.floating)) \
                or not 0.0 <= float(self.dup_correlation) < 1.0:
            raise ConfigError(f"dup_correlation must be a number in [0, 1), got {self.dup_correlation!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (tuples become lists)."""
        return {
            "n_materials": int(self.n_materials),
            "n_devices": int(self.n_devices),
            "n_material_features": int(self.n_material_features),
            "n_factors": int(self.n_factors),
            "n_relevant": int(self.n_relevant),
            "n_device_numeric": int(self.n_device_numeric),
            "device_categories": list(self.device_categories),
            "noise": float(self.noise),
            "correlated_pair": bool(self.correlated_pair),
            "seed": int(self.seed),
            "dup_correlation": float(self.dup_correlation),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticConfig:
        """Build a config from :meth:`to_dict` output; missing keys take defaults.

        Raises:
            ConfigError: on unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a SyntheticConfig needs a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown SyntheticConfig keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**data)


@dataclass
class GroundTruth:
    """The known structure behind a :class:`SyntheticData` set.

    Attributes:
        relevant_material_features: material features the factors depend on.
        irrelevant_material_features: pure-noise material features.
        n_factors: number of true latent factors.
        factor_loadings: ``W`` as nested lists, one row per factor, one column per
            entry of ``relevant_material_features``: ``z_k = tanh(W[k] . x_relevant)``.
        relevant_device_features: device-own features y2 depends on (``d0``, ``d1``,
            ``stack``); y2 also depends on the relevant material features, through
            the factors.
        irrelevant_device_features: pure-noise device features.
        equations: human-readable strings documenting every nested function.
        proxy_material_features: features no equation uses but that are strongly
            correlated with a relevant one (``x_dup``); empty unless correlated_pair.
        stack_effects: additive effect of each ``stack`` level on y2.
        factor_columns: columns of the materials table holding the true factors.
    """

    relevant_material_features: list[str]
    irrelevant_material_features: list[str]
    n_factors: int
    factor_loadings: list[list[float]]
    relevant_device_features: list[str]
    irrelevant_device_features: list[str]
    equations: list[str]
    proxy_material_features: list[str] = field(default_factory=list)
    stack_effects: dict[str, float] = field(default_factory=dict)
    factor_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "relevant_material_features": list(self.relevant_material_features),
            "irrelevant_material_features": list(self.irrelevant_material_features),
            "n_factors": int(self.n_factors),
            "factor_loadings": [[float(v) for v in row] for row in self.factor_loadings],
            "relevant_device_features": list(self.relevant_device_features),
            "irrelevant_device_features": list(self.irrelevant_device_features),
            "equations": list(self.equations),
            "proxy_material_features": list(self.proxy_material_features),
            "stack_effects": {str(k): float(v) for k, v in self.stack_effects.items()},
            "factor_columns": list(self.factor_columns),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown GroundTruth keys: {', '.join(unknown)}")
        return cls(**data)


@dataclass
class SyntheticData:
    """A generated data set: two tables, their ground truth and the config.

    Attributes:
        materials: ``material_id``, features ``x0 ..`` (+ ``x_dup``), hidden truth
            ``true_z1 .. true_zK`` and ``true_y1`` (noise-free), target ``y1``.
        devices: ``device_id``, ``material_id``, the material's features (same
            names), ``d0 ..``, ``stack``, ``true_y1`` of its material, target ``y2``.
        truth: the known structure.
        config: the configuration that produced it.
    """

    materials: pd.DataFrame
    devices: pd.DataFrame
    truth: GroundTruth
    config: SyntheticConfig


# --------------------------------------------------------------------------- helpers


def _fmt(value: float) -> str:
    """Format a constant compactly (``0.4``, ``12``, ``-0.35``)."""
    text = f"{round(float(value), 6):g}"
    return "0" if text == "-0" else text


def _linear_combination(terms: list[tuple[float, str]], constant: float | None = None) -> str:
    """Render ``c0 + a t1 - b t2 ...`` with coefficients of magnitude 1 left implicit."""
    parts: list[str] = []
    if constant is not None:
        parts.append(_fmt(constant))
    for coef, term in terms:
        if coef == 0:
            continue
        magnitude = abs(coef)
        body = term if magnitude == 1 else f"{_fmt(magnitude)} {term}"
        if not parts:
            parts.append(body if coef > 0 else f"-{body}")
        else:
            parts.append(f"{'+' if coef > 0 else '-'} {body}")
    return " ".join(parts) if parts else "0"


def _feature_range(prefix: str, start: int, stop: int) -> str:
    """``x0..x4`` style description of a contiguous index range."""
    if stop - start == 1:
        return f"{prefix}{start}"
    return f"{prefix}{start}..{prefix}{stop - 1}"


def _sample_loadings(rng: np.random.Generator, n_factors: int, n_relevant: int) -> np.ndarray:
    """A sparse, well-conditioned ``K x r`` loading matrix with unit-norm rows.

    Each relevant feature gets a primary factor (round robin over a random factor
    order, so every factor has at least one) with a strong loading and, with
    probability 0.3, a weaker secondary loading on another factor. Rows are
    normalised to unit norm (so ``W x`` has unit variance for standard-normal x)
    and rounded to two decimals, the form printed in the equations. Of up to 200
    draws, the first with condition number <= 4 is kept (else the best one).
    """
    best: np.ndarray | None = None
    best_cond = np.inf
    for _ in range(200):
        w = np.zeros((n_factors, n_relevant))
        order = rng.permutation(n_factors)
        features = rng.permutation(n_relevant)
        for i, j in enumerate(features):
            primary = int(order[i % n_factors])
            w[primary, j] = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0)
            if n_factors > 1 and rng.random() < 0.3:
                others = [k for k in range(n_factors) if k != primary]
                secondary = int(rng.choice(others))
                w[secondary, j] = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.45)
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        w = np.round(w, 2)
        w[np.abs(w) < 0.05] = 0.0
        if np.any(np.all(w == 0.0, axis=0)):
            continue
        cond = float(np.linalg.cond(w))
        if cond < best_cond:
            best, best_cond = w, cond
        if cond <= _MAX_CONDITION:
            break
    assert best is not None  # the primary loadings make at least one draw valid
    return best


def _stack_effects(categories: tuple[str, ...]) -> dict[str, float]:
    """Evenly spaced additive effects in [-1.5, 1.5], in the order given."""
    if len(categories) == 1:
        return {categories[0]: 0.0}
    values = np.round(np.linspace(-_STACK_EFFECT_SPAN, _STACK_EFFECT_SPAN, len(categories)), 3)
    return {c: float(v) for c, v in zip(categories, values)}


def _y1_terms(n_factors: int) -> list[tuple[float, str]]:
    terms = [(_Y1_LINEAR[k], f"z{k + 1}") for k in range(n_factors)]
    terms.append((_Y1_SQUARE, "z1^2"))
    if n_factors >= 2:
        terms.append((_Y1_INTERACTION, "z1*z2"))
    return terms


def _true_y1(z: np.ndarray) -> np.ndarray:
    n_factors = z.shape[1]
    y = _Y1_INTERCEPT + z @ np.asarray(_Y1_LINEAR[:n_factors]) + _Y1_SQUARE * z[:, 0] ** 2
    if n_factors >= 2:
        y = y + _Y1_INTERACTION * z[:, 0] * z[:, 1]
    return y


def _zero_pad(prefix: str, n: int) -> list[str]:
    width = max(4, len(str(n - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


# --------------------------------------------------------------------------- public API


def material_feature_names(data: SyntheticData) -> list[str]:
    """Input columns of the stage-1 (materials) model: ``x0 ..`` and ``x_dup`` if present.

    The same names are the material columns of ``data.devices``.
    """
    names = [f"x{j}" for j in range(data.config.n_material_features)]
    if data.config.correlated_pair:
        names.append(DUP_FEATURE)
    return names


def device_feature_names(data: SyntheticData) -> list[str]:
    """The device's own input columns: ``d0 ..`` and ``stack`` (categorical).

    A flat (non-nested) device model uses
    ``material_feature_names(data) + device_feature_names(data)``; NestedAE's stage
    2 uses the stage-1 latents in place of the material features.
    """
    return [f"d{j}" for j in range(data.config.n_device_numeric)] + ["stack"]


def true_factor_names(data: SyntheticData) -> list[str]:
    """Columns of ``data.materials`` holding the hidden true factors."""
    return [f"{TRUTH_PREFIX}z{k + 1}" for k in range(data.config.n_factors)]


def generate(config: SyntheticConfig | None = None, **overrides: Any) -> SyntheticData:
    """Generate the synthetic materials and devices tables with their ground truth.

    Args:
        config: the configuration; defaults to ``SyntheticConfig()``.
        **overrides: fields of :class:`SyntheticConfig` to replace, e.g. ``seed=3``.

    Returns:
        A :class:`SyntheticData`. The same config always gives the same data.
        Independent random streams are derived from the seed for the features,
        the loadings, ``x_dup``, each noise and the devices, so that e.g. turning
        ``correlated_pair`` on or changing ``n_devices`` leaves the materials'
        other columns unchanged.

    Raises:
        ConfigError: if the config or an override is invalid.
    """
    cfg = config if config is not None else SyntheticConfig()
    if not isinstance(cfg, SyntheticConfig):
        raise ConfigError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    if overrides:
        known = {f.name for f in dataclasses.fields(SyntheticConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown SyntheticConfig fields: {', '.join(unknown)}")
        cfg = dataclasses.replace(cfg, **overrides)
    else:
        cfg.validate()

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(cfg.seed)).spawn(6)]
    rng_x, rng_w, rng_dup, rng_e1, rng_dev, rng_e2 = streams
    p, r, k_f = cfg.n_material_features, cfg.n_relevant, cfg.n_factors
    n_mat, n_dev, m = cfg.n_materials, cfg.n_devices, cfg.n_device_numeric
    noise = float(cfg.noise)

    # Stage 1: materials.
    x = rng_x.standard_normal((n_mat, p))
    w = _sample_loadings(rng_w, k_f, r)
    z = np.tanh(x[:, :r] @ w.T)
    true_y1 = _true_y1(z)
    y1 = true_y1 + noise * rng_e1.standard_normal(n_mat)

    x_names = [f"x{j}" for j in range(p)]
    materials = pd.DataFrame({"material_id": _zero_pad("M", n_mat)})
    for j, name in enumerate(x_names):
        materials[name] = x[:, j]
    rho = float(cfg.dup_correlation)
    if cfg.correlated_pair:
        materials[DUP_FEATURE] = rho * x[:, 0] + math.sqrt(1.0 - rho**2) * rng_dup.standard_normal(n_mat)
    for kk in range(k_f):
        materials[f"{TRUTH_PREFIX}z{kk + 1}"] = z[:, kk]
    materials[f"{TRUTH_PREFIX}y1"] = true_y1
    materials[MATERIAL_TARGET] = y1

    # Stage 2: devices. Materials are drawn with replacement, p ~ 1/rank.
    ranks = rng_dev.permutation(n_mat) + 1
    weights = 1.0 / ranks
    mat_idx = rng_dev.choice(n_mat, size=n_dev, replace=True, p=weights / weights.sum())
    d = rng_dev.standard_normal((n_dev, m))
    categories = cfg.device_categories
    stack_idx = rng_dev.integers(0, len(categories), size=n_dev)
    effects = _stack_effects(categories)
    stack = np.asarray(categories, dtype=object)[stack_idx]
    stack_effect = np.asarray([effects[c] for c in categories])[stack_idx]

    dev_true_y1 = true_y1[mat_idx]
    y2 = (
        _Y2_INTERCEPT
        + _Y2_PEAK_HEIGHT * np.exp(-(((dev_true_y1 - _Y2_OPTIMAL_Y1) / _Y2_PEAK_WIDTH) ** 2))
        + _Y2_FACTOR * z[mat_idx, k_f - 1]
        + _Y2_D0 * d[:, 0]
        + _Y2_D1 * np.tanh(_Y2_D1_SCALE * d[:, 1])
        + stack_effect
        + noise * rng_e2.standard_normal(n_dev)
    )

    mat_feature_cols = x_names + ([DUP_FEATURE] if cfg.correlated_pair else [])
    devices = pd.DataFrame({"device_id": _zero_pad("D", n_dev)})
    devices["material_id"] = materials["material_id"].to_numpy()[mat_idx]
    for name in mat_feature_cols:
        devices[name] = materials[name].to_numpy()[mat_idx]
    for j in range(m):
        devices[f"d{j}"] = d[:, j]
    devices["stack"] = pd.Series(stack, dtype=object)
    devices[f"{TRUTH_PREFIX}y1"] = dev_true_y1
    devices[DEVICE_TARGET] = y2

    truth = GroundTruth(
        relevant_material_features=x_names[:r],
        irrelevant_material_features=x_names[r:],
        n_factors=k_f,
        factor_loadings=[[float(v) for v in row] for row in w],
        relevant_device_features=[f"d{j}" for j in range(_N_RELEVANT_DEVICE_NUMERIC)] + ["stack"],
        irrelevant_device_features=[f"d{j}" for j in range(_N_RELEVANT_DEVICE_NUMERIC, m)],
        equations=_equations(cfg, w, effects),
        proxy_material_features=[DUP_FEATURE] if cfg.correlated_pair else [],
        stack_effects=effects,
        factor_columns=[f"{TRUTH_PREFIX}z{kk + 1}" for kk in range(k_f)],
    )
    logger.debug(
        "synthetic data: %d materials, %d devices, %d factors, seed %d", n_mat, n_dev, k_f, cfg.seed
    )
    return SyntheticData(materials=materials, devices=devices, truth=truth, config=cfg)


def _equations(cfg: SyntheticConfig, w: np.ndarray, effects: dict[str, float]) -> list[str]:
    """The human-readable (LaTeX-free) equations of every nested function."""
    p, r, k_f, m = cfg.n_material_features, cfg.n_relevant, cfg.n_factors, cfg.n_device_numeric
    noise = _fmt(cfg.noise)
    lines: list[str] = []
    feats = f"{_feature_range('x', 0, p)} ~ N(0, 1) independently"
    if r < p:
        feats += f"; {_feature_range('x', 0, r)} drive the factors, {_feature_range('x', r, p)} are pure noise"
    lines.append(feats)
    if cfg.correlated_pair:
        lines.append(
            f"{DUP_FEATURE} = {_fmt(cfg.dup_correlation)} x0 + {_fmt(round(math.sqrt(1 - cfg.dup_correlation**2), 3))} u, "
            "u ~ N(0, 1) (a near copy of x0 that no equation uses)"
        )
    for kk in range(k_f):
        terms = [(float(w[kk, j]), f"x{j}") for j in range(r)]
        lines.append(f"z{kk + 1} = tanh({_linear_combination(terms)})")
    lines.append(f"true_y1 = {_linear_combination(_y1_terms(k_f), _Y1_INTERCEPT)}")
    lines.append(f"y1 = true_y1 + e1, e1 ~ N(0, {noise}^2)")
    lines.append(
        "material of each device ~ Categorical(p), p_i proportional to 1/rank_i over a random "
        "ranking (a few materials are used by many devices)"
    )
    dev = f"{_feature_range('d', 0, m)} ~ N(0, 1) independently; d0, d1 drive y2"
    if m > _N_RELEVANT_DEVICE_NUMERIC:
        dev += f", {_feature_range('d', _N_RELEVANT_DEVICE_NUMERIC, m)} pure noise"
    lines.append(dev)
    lines.append(f"stack ~ uniform over {{{', '.join(cfg.device_categories)}}}")
    lines.append(
        "s(stack) = " + "; ".join(f"{_fmt(v)} if stack = {c}" for c, v in effects.items())
    )
    peak = (
        f"{_fmt(_Y2_PEAK_HEIGHT)} exp(-((true_y1 - {_fmt(_Y2_OPTIMAL_Y1)}) / {_fmt(_Y2_PEAK_WIDTH)})^2)"
    )
    y2_terms = [
        (1.0, peak),
        (_Y2_FACTOR, f"z{k_f}"),
        (_Y2_D0, "d0"),
        (_Y2_D1, f"tanh({_fmt(_Y2_D1_SCALE)} d1)"),
        (1.0, "s(stack)"),
        (1.0, "e2"),
    ]
    lines.append(f"y2 = {_linear_combination(y2_terms, _Y2_INTERCEPT)}, e2 ~ N(0, {noise}^2)")
    return lines
