"""The front door: :class:`NestedAEModel`, a scikit-learn-style estimator over a NestedAE chain.

Five lines in a notebook load the shipped model, predict a composition with its
uncertainty and show what drives it::

    from nestedae_core import NestedAEModel
    model = NestedAEModel.load()                      # the shipped default bundle
    model.predict("Cs0.05FA0.79MA0.16PbBr0.51I2.49", etl="SnO2-np", htl="Spiro-MeOTAD")
    model.explain("Cs0.05FA0.79MA0.16PbBr0.51I2.49", etl="SnO2-np", htl="Spiro-MeOTAD").top(5)

It is a scikit-learn estimator (the :class:`sklearn.base.BaseEstimator` protocol, without importing
scikit-learn until scikit-learn itself asks, so a prediction stays light): constructor
arguments are the parameters (:meth:`get_params` / :meth:`set_params`, nested into
the chain's configuration: ``set_params(spec__folds=3)``), learnt state ends with an
underscore (``model_``, ``metrics_``, ``oof_``), :meth:`fit` returns the estimator,
:func:`sklearn.base.clone` and :func:`sklearn.utils.validation.check_is_fitted` work.
A query is anything :meth:`nestedae_core.query.Query.of` accepts (a formula, a
:class:`~nestedae_core.chemistry.composition.Composition`, a mapping of site
fractions, a :class:`~nestedae_core.query.Query`), one or a list, or a DataFrame
with a ``formula`` column and optional ``etl``/``htl`` columns (the batch path's
table); :meth:`predict` and :meth:`explain` take the same queries. Output columns
follow the one schema (:mod:`nestedae_core.schema`): ``bandgap_eV_mean`` (measured),
``bandgap_pbe_eV_mean``, ``pce_percent_lower`` ... Units: band gaps in eV, PCE in %,
Voc V, Jsc mA/cm2, FF a fraction; ``_lower``/``_upper`` are the prediction interval
at ``level`` (cross-validated models only) and ``_std`` the spread of the ensemble
members (model disagreement), in the same unit.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from .errors import ConfigError, InputError, NotFittedError
from .explain import Attribution, ExplainSettings, explain_stage_output
from .model.chain import NestedAE
from .model.config import ChainSpec, config_error_message
from .model.intervals import DEFAULT_LEVEL
from .perovskite.presets import preset
from .physics import ceilings as _ceilings  # noqa: F401  registers the device-physics ceilings (Shockley-Queisser)
from .query import Query, QueryLike, query_frame
from .schema import input_key, stage_domain_key, target_key
from .store import SHIPPED_BUNDLE_NAMES, load_bundle, load_default_bundle, save_bundle, shipped_bundle_path
from . import train
from .train import TrainResult

__all__ = ["NestedAEModel"]

_PARAMS = ("spec", "device", "data_dir", "threads")


class NestedAEModel:
    """A NestedAE chain as an estimator: ``fit``, ``cross_validate``, ``predict``, ``explain``, ``save``/``load``.

    Args:
        spec: the chain configuration: a :class:`ChainSpec`, a preset name
            (``paper``, ``paper-jv``, ``pbe-extended``, ``synthetic`` ...) or a
            dict that validates as a ChainSpec.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` for training.
        data_dir: folder holding the dataset files (otherwise ``NESTEDAE_DATA_DIR``
            or the download cache).
        threads: CPU threads while training (None: the library's default).

    Attributes (after fitting or loading):
        model_: the trained :class:`~nestedae_core.model.NestedAE` (its members form the ensemble).
        metrics_: per stage and target: validation metrics after :meth:`cross_validate`
            (MAE, RMSE, R² averaged over folds), training-set metrics after :meth:`fit`.
        oof_: out-of-fold predictions per stage (after :meth:`cross_validate`), else None.
    """

    def __init__(
        self,
        spec: ChainSpec | str | Mapping[str, Any] = "paper",
        *,
        device: str = "auto",
        data_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.spec = spec
        self.device = device
        self.data_dir = data_dir
        self.threads = threads

    # ---------------------------------------------------------------- parameters

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (``spec``, ``device``, ``data_dir``, ``threads``).

        ``deep``: also the chain's configuration as ``spec__<field>`` (``spec__folds``,
        ``spec__seed``, ``spec__split`` ...), settable with :meth:`set_params`.
        """
        params = {name: getattr(self, name) for name in _PARAMS}
        if deep:
            try:
                spec = self.chain_spec()
            except (ConfigError, InputError):
                return params
            params.update({f"spec__{k}": v for k, v in spec.model_dump(mode="python").items()})
        return params

    def set_params(self, **params: Any) -> "NestedAEModel":
        """Set constructor parameters, and fields of the chain's configuration as ``spec__<field>``; returns self.

        Unknown names, and values the configuration refuses, raise :class:`InputError` /
        :class:`ConfigError` with what is wrong.
        """
        nested = {k[len("spec__"):]: v for k, v in params.items() if k.startswith("spec__")}
        plain = {k: v for k, v in params.items() if not k.startswith("spec__")}
        unknown = sorted(set(plain) - set(_PARAMS))
        if unknown:
            raise InputError(f"unknown parameter(s) {', '.join(unknown)}; parameters: {', '.join(_PARAMS)} (and spec__<field>)")
        for name, value in plain.items():
            setattr(self, name, value)
        if nested:
            spec = self.chain_spec()
            fields = set(type(spec).model_fields)
            bad = sorted(set(nested) - fields)
            if bad:
                raise InputError(f"the chain configuration has no field(s) {', '.join(bad)}; fields: {', '.join(sorted(fields))}")
            try:
                self.spec = ChainSpec.model_validate({**spec.model_dump(mode="python"), **nested})
            except ValidationError as exc:
                raise ConfigError(config_error_message(exc)) from None
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """True once trained or loaded (what :func:`sklearn.utils.validation.check_is_fitted` asks)."""
        return getattr(self, "model_", None) is not None

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's parameter names (scikit-learn's convention)."""
        return sorted(_PARAMS)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        """scikit-learn's estimator tags (only scikit-learn calls this, so importing it here costs a prediction nothing)."""
        from sklearn.base import BaseEstimator

        tags = BaseEstimator.__sklearn_tags__(self)  # type: ignore[arg-type]
        tags.non_deterministic = True  # training draws seeds per member; loaded models are deterministic
        tags.requires_fit = True
        return tags

    def chain_spec(self) -> ChainSpec:
        """The validated :class:`ChainSpec` of ``spec`` (ConfigError when it is not valid)."""
        if isinstance(self.spec, ChainSpec):
            return self.spec
        if isinstance(self.spec, str):
            return preset(self.spec)
        if isinstance(self.spec, Mapping):
            try:
                return ChainSpec.model_validate(dict(self.spec))
            except ValidationError as exc:
                raise ConfigError(config_error_message(exc)) from None
        raise InputError(f"spec must be a ChainSpec, a preset name or a dict; got {type(self.spec).__name__}")

    # ---------------------------------------------------------------- training

    def fit(
        self,
        tables: Mapping[str, pd.DataFrame] | None = None,
        *,
        callback: Callable[[Any], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> "NestedAEModel":
        """Train the chain on ALL rows of every stage's table; returns self.

        ``tables``: stage name -> table (otherwise each stage's registry dataset
        is loaded). The ensemble members differ only by their seeds; ``metrics_``
        holds the ensemble's training-set metrics (MAE, RMSE, R² on the rows it
        was trained on: not an estimate of the error on new data; use
        :meth:`cross_validate` for that).
        """
        model = train.fit(
            self.chain_spec(), tables, data_dir=_path_or_none(self.data_dir), device=self.device,
            callback=callback, should_stop=should_stop, threads=self.threads,
        )
        self.model_, self.metrics_, self.oof_ = model, model.record.get("training_metrics", {}), None
        return self

    def cross_validate(
        self,
        tables: Mapping[str, pd.DataFrame] | None = None,
        *,
        callback: Callable[[Any], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """k-fold cross-validation (``spec.folds``, ``spec.split``, ``spec.seed``); the fold models
        become the fitted ensemble. Returns the :class:`~nestedae_core.train.TrainResult`
        (per-fold metrics, out-of-fold predictions, folds)."""
        result = train.cross_validate(
            self.chain_spec(), tables, data_dir=_path_or_none(self.data_dir), device=self.device,
            callback=callback, should_stop=should_stop, threads=self.threads,
        )
        self.model_, self.metrics_, self.oof_ = result.model, result.metrics, result.oof
        return result

    # ---------------------------------------------------------------- using the model

    @property
    def fitted(self) -> NestedAE:
        """The trained chain; raises :class:`NotFittedError` before fit/cross_validate/load."""
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError("this NestedAEModel is not trained yet; call fit(), cross_validate() or NestedAEModel.load()")
        return model

    def queries(self, queries: QueryLike | Sequence[QueryLike] | pd.DataFrame, *, etl: str | None = None,
                htl: str | None = None) -> list[Query]:
        """The queries as :class:`Query` objects (``etl``/``htl`` given here apply to every one).

        A DataFrame holds one query per row: a ``formula`` column and optional ``etl`` and
        ``htl`` columns (blank cells: the model's most common stack).
        """
        if isinstance(queries, pd.DataFrame):
            return _frame_queries(queries, etl=etl, htl=htl)
        items = [queries] if isinstance(queries, (str, Mapping, Query)) or not isinstance(queries, Sequence) else list(queries)
        if not items:
            raise InputError("no query given: pass a formula, a Composition, a mapping of site fractions or a Query")
        return [Query.of(q, etl=etl, htl=htl) for q in items]

    def query_frame(self, queries: QueryLike | Sequence[QueryLike] | pd.DataFrame, *, etl: str | None = None,
                    htl: str | None = None) -> pd.DataFrame:
        """The model's raw-input table (descriptors, stacks, ...) for the queries, one row each."""
        model = self.fitted
        qs = self.queries(queries, etl=etl, htl=htl)
        resolved = [q.resolve(model)[0] for q in qs]
        cats = {col: [r[col] for r in resolved] for col in (resolved[0] if resolved else {})}
        numeric_cols = sorted({k for q in qs for k in q.numeric})
        numeric: dict[str, list[float]] = {}
        for col in numeric_cols:
            missing = [q.formula for q in qs if col not in q.numeric]
            if missing:
                raise InputError(f"numeric input '{col}' is given for some queries but not for {', '.join(missing[:3])}")
            numeric[col] = [float(q.numeric[col]) for q in qs]
        return query_frame(model, [q.composition for q in qs], categorical=cats, numeric=numeric or None)

    def predict(self, queries: QueryLike | Sequence[QueryLike] | pd.DataFrame, *, etl: str | None = None,
                htl: str | None = None, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """Predictions of every stage for one or many queries, one row each, in the one schema.

        Columns: ``formula``, the inputs used (``etl``, ``htl``, ``phase`` where the model
        takes them), then for every target ``<key>_mean``, ``<key>_lower``/``<key>_upper``
        (the CV+ prediction interval at ``level``, e.g. 0.9 = 90 %; cross-validated models
        only) and ``<key>_std`` (the ensemble spread, i.e. model disagreement), in the
        target's unit, with ``<key>`` as in :mod:`nestedae_core.schema` (``bandgap_eV``,
        ``bandgap_pbe_eV``, ``pce_percent`` ...); then ``in_domain`` (every stage's query
        inside its training domain), ``domain_stage`` (the first stage it leaves, "" inside),
        ``domain_message`` (why) and ``<stage>_in_domain``. The keys are listed in :meth:`targets`.
        """
        model = self.fitted
        frame = self.query_frame(queries, etl=etl, htl=htl)
        preds = model.predict(frame, level=level)
        cat_cols = list(dict.fromkeys(c for p in model.prep for c in p.categorical_columns))
        out = frame.loc[:, ["formula", *cat_cols]].reset_index(drop=True).rename(columns={c: input_key(c) for c in cat_cols})
        for st in model.spec.stages:
            if st.name not in preds:
                continue
            sp = preds[st.name]
            for j, t in enumerate(st.targets):
                key = target_key(st, t)
                out[f"{key}_mean"] = sp.mean[:, j]
                if sp.lower is not None and sp.upper is not None:
                    out[f"{key}_lower"] = sp.lower[:, j]
                    out[f"{key}_upper"] = sp.upper[:, j]
                out[f"{key}_std"] = sp.std[:, j]
        names = list(preds)
        inside = np.column_stack([np.asarray(preds[n].in_domain, dtype=bool) for n in names]) if names else np.ones((len(out), 0), bool)
        out["in_domain"] = inside.all(axis=1)
        first = [next((k for k, ok in enumerate(row) if not ok), None) for row in inside]
        out["domain_stage"] = ["" if k is None else names[k] for k in first]
        out["domain_message"] = ["" if k is None else str(preds[names[k]].domain_reason[r]) for r, k in enumerate(first)]
        for n in names:
            out[stage_domain_key(n)] = np.asarray(preds[n].in_domain, dtype=bool)
        return out

    def targets(self) -> pd.DataFrame:
        """The predicted quantities: ``key`` (the name in every output), ``stage``, ``column`` (the dataset's), ``label``, ``unit``."""
        spec = self.fitted.spec
        return pd.DataFrame(
            [{"key": target_key(st, t), "stage": st.name, "column": t.column, "label": t.label or t.column, "unit": t.unit}
             for st in spec.stages for t in st.targets]
        )

    def explain(
        self,
        queries: QueryLike | Sequence[QueryLike],
        output: str | None = None,
        *,
        etl: str | None = None,
        htl: str | None = None,
        inputs: str = "chain",
        method: str = "auto",
        member: int | None = None,
        settings: ExplainSettings | None = None,
    ) -> Attribution:
        """SHAP attributions of one predicted quantity for the queries.

        ``output``: a target key (``bandgap_eV``, ``pce_percent``; :mod:`nestedae_core.schema`), column or
        label (``Gap``/``band gap``, ``JV_reverse_scan_PCE``/``PCE``)
        or a latent (``materials.z3``); default: the last stage's first target (PCE
        for the perovskite chains). ``inputs='chain'`` attributes to the raw inputs
        of the whole chain (descriptors, stacks), ``'stage'`` to the owning stage's
        own inputs. Returns an :class:`~nestedae_core.explain.Attribution`
        (``.top(k)``, ``.frame()``, ``.to_json()``), in the output's unit.
        """
        model = self.fitted
        stage, name = self._locate_output(output)
        frame = self.query_frame(queries, etl=etl, htl=htl)
        return explain_stage_output(model, stage, name, frame, inputs=inputs, method=method, member=member, settings=settings)  # type: ignore[arg-type]

    def _locate_output(self, output: str | None) -> tuple[int, str]:
        spec = self.fitted.spec
        if output is None:
            return len(spec.stages) - 1, spec.stages[-1].targets[0].column
        for i, st in enumerate(spec.stages):
            for t in st.targets:
                if output in (target_key(st, t), t.column, t.label):
                    return i, t.column
            if output.startswith(f"{st.name}."):
                return i, output
        known = [target_key(st, t) for st in spec.stages for t in st.targets]
        raise InputError(f"this model has no output '{output}'; targets: {', '.join(known)} (or a latent such as {spec.stages[0].name}.z1)")

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Save the trained chain as a bundle folder (safetensors + JSON, no pickle); returns its path.

        An existing folder is replaced only with ``overwrite=True``.
        """
        return save_bundle(self.fitted, path, oof=self.oof_, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, device: str = "cpu") -> "NestedAEModel":
        """A fitted estimator from a bundle folder or the name of a shipped model (``measured-default``,
        ``paper-default``); the shipped default model when ``path`` is None."""
        if path is None:
            return cls.from_model(load_default_bundle(device=device))
        if str(path) in SHIPPED_BUNDLE_NAMES and not Path(path).exists():
            path = shipped_bundle_path(str(path))
        model = load_bundle(path, device=device)
        return cls.from_model(model)

    @classmethod
    def from_model(cls, model: NestedAE) -> "NestedAEModel":
        """Wrap an already trained :class:`~nestedae_core.model.NestedAE`."""
        if not isinstance(model, NestedAE):
            raise InputError(f"expected a trained NestedAE, got {type(model).__name__}")
        est = cls(model.spec, device=str(model.device))
        est.model_, est.metrics_ = model, model.metrics
        return est

    def __repr__(self) -> str:
        spec = self.spec.name if isinstance(self.spec, ChainSpec) else repr(self.spec)
        state = "fitted" if self.model_ is not None else "not fitted"
        return f"NestedAEModel(spec={spec}, device={self.device!r}, {state})"


def _frame_queries(table: pd.DataFrame, *, etl: str | None, htl: str | None) -> list[Query]:
    """One :class:`Query` per row of a table with a ``formula`` column and optional ``etl``/``htl`` columns."""
    if "formula" not in table.columns:
        raise InputError(f"the table needs a 'formula' column (it has: {', '.join(map(str, table.columns[:10]))})")
    if table.empty:
        raise InputError("the table has no rows; add one row per query")

    def cell(row: Any, name: str, given: str | None) -> str | None:
        if given is not None:
            return given
        value = row.get(name) if name in table.columns else None
        return None if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "" else str(value)

    out = []
    for n, (_, row) in enumerate(table.iterrows(), start=1):
        formula = row["formula"]
        if not isinstance(formula, str) or not formula.strip():
            raise InputError(f"row {n}: the 'formula' cell is empty; give a composition such as MAPbI3")
        out.append(Query.of(formula, etl=cell(row, "etl", etl), htl=cell(row, "htl", htl)))
    return out


def _path_or_none(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)

