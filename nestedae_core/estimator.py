"""The front door: :class:`NestedAEModel`, a scikit-learn-style estimator over a NestedAE chain.

Five lines in a notebook load the shipped model, predict a composition with its
uncertainty and show what drives it::

    from nestedae_core import NestedAEModel
    model = NestedAEModel.load()                      # the shipped default bundle
    model.predict("Cs0.05FA0.79MA0.16PbBr0.51I2.49", etl="SnO2-np", htl="Spiro-MeOTAD")
    model.explain("Cs0.05FA0.79MA0.16PbBr0.51I2.49", etl="SnO2-np", htl="Spiro-MeOTAD").top(5)

Conventions follow scikit-learn: constructor arguments are the parameters
(:meth:`get_params` / :meth:`set_params`), learnt state ends with an underscore
(``model_``, ``metrics_``, ``oof_``), :meth:`fit` returns the estimator. A query
is anything :meth:`nestedae_core.query.Query.of` accepts (a formula, a
:class:`~nestedae_core.chemistry.composition.Composition`, a mapping of site
fractions, a :class:`~nestedae_core.query.Query`), and :meth:`predict` and
:meth:`explain` take the same queries. Units: band gaps in eV, PCE in %, Voc V,
Jsc mA/cm2, FF a fraction; ``_lower``/``_upper`` are the 90 % prediction
interval (cross-validated models only) and ``_std`` the spread of the ensemble
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
from .perovskite.presets import preset
from .query import Query, QueryLike, query_frame
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
        self.model_: NestedAE | None = None
        self.metrics_: dict[str, Any] | None = None
        self.oof_: dict[str, pd.DataFrame] | None = None

    # ---------------------------------------------------------------- parameters

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (``spec``, ``device``, ``data_dir``, ``threads``)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> "NestedAEModel":
        """Set constructor parameters; returns self. Unknown names raise :class:`InputError`."""
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise InputError(f"unknown parameter(s) {', '.join(unknown)}; parameters: {', '.join(_PARAMS)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

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
        if self.model_ is None:
            raise NotFittedError("this NestedAEModel is not trained yet; call fit(), cross_validate() or NestedAEModel.load()")
        return self.model_

    def queries(self, queries: QueryLike | Sequence[QueryLike], *, etl: str | None = None, htl: str | None = None) -> list[Query]:
        """The queries as :class:`Query` objects (``etl``/``htl`` given here apply to every one)."""
        items = [queries] if isinstance(queries, (str, Mapping, Query)) or not isinstance(queries, Sequence) else list(queries)
        if not items:
            raise InputError("no query given: pass a formula, a Composition, a mapping of site fractions or a Query")
        return [Query.of(q, etl=etl, htl=htl) for q in items]

    def query_frame(self, queries: QueryLike | Sequence[QueryLike], *, etl: str | None = None, htl: str | None = None) -> pd.DataFrame:
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

    def predict(self, queries: QueryLike | Sequence[QueryLike], *, etl: str | None = None, htl: str | None = None) -> pd.DataFrame:
        """Predictions of every stage for one or many queries, one row each.

        Columns: ``formula``, the categorical inputs used (e.g. ``ETL_stack_sequence``),
        then for every target ``<column>_mean`` and ``<column>_std`` (the ensemble
        mean and spread, i.e. model disagreement, in the target's unit) and, for a
        cross-validated model, ``<column>_lower``/``<column>_upper`` (the 90 % CV+
        prediction interval; absent after ``fit``), ``in_domain`` (every stage's query
        inside its training domain) and ``<stage>.in_domain``. The target columns
        are listed in :meth:`targets`.
        """
        model = self.fitted
        frame = self.query_frame(queries, etl=etl, htl=htl)
        preds = model.predict(frame)
        cat_cols = [c for p in model.prep for c in p.categorical_columns]
        out = frame.loc[:, ["formula", *dict.fromkeys(cat_cols)]].reset_index(drop=True)
        for st in model.spec.stages:
            if st.name not in preds:
                continue
            sp = preds[st.name]
            for j, t in enumerate(st.targets):
                out[f"{t.column}_mean"] = sp.mean[:, j]
                out[f"{t.column}_std"] = sp.std[:, j]
                if sp.lower is not None and sp.upper is not None:
                    out[f"{t.column}_lower"] = sp.lower[:, j]
                    out[f"{t.column}_upper"] = sp.upper[:, j]
        out["in_domain"] = np.logical_and.reduce([preds[n].in_domain for n in preds])
        for name, sp in preds.items():
            out[f"{name}.in_domain"] = sp.in_domain
        return out

    def targets(self) -> pd.DataFrame:
        """The predicted quantities: ``stage``, ``column``, ``label``, ``unit``."""
        spec = self.fitted.spec
        return pd.DataFrame(
            [{"stage": st.name, "column": t.column, "label": t.label or t.column, "unit": t.unit} for st in spec.stages for t in st.targets]
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

        ``output``: a target column or label (``Gap``/``band gap``, ``JV_reverse_scan_PCE``/``PCE``)
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
                if output in (t.column, t.label):
                    return i, t.column
            if output.startswith(f"{st.name}."):
                return i, output
        known = [t.column for st in spec.stages for t in st.targets]
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


def _path_or_none(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)

