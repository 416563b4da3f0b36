"""Benchmarks: accuracy against scikit-learn baselines on identical folds, and speed.

Accuracy tasks (each: NestedAE and every baseline on the *same* folds, from
:func:`nestedae_core.train.make_folds` with the same seed):

* ``bandgap-paper``: band gap (eV) on ``mhp-pbe-paper`` from the paper's 15 site
  descriptors; NestedAE = stage 1 of the ``paper`` preset.
* ``bandgap-pbe``: band gap (eV) on ``mhp-pbe`` from the 15 descriptors, the 14
  site fractions and the phase; NestedAE = the ``pbe-extended`` preset. Random
  splits put the same formula (in another phase) in train and validation;
  grouped splits group by formula.
* ``pce-devices``: PCE (%) on ``psc-devices`` from the 15 descriptors + ETL + HTL
  (baselines) or from the stage-1 latents + ETL + HTL (NestedAE, the full ``paper``
  chain). Random splits put the same recipe (composition + ETL + HTL) in train
  and validation; grouped splits keep recipes apart.

Baselines: the training-fold mean, ridge regression (RidgeCV), kernel ridge (RBF,
alpha and gamma by 3-fold grid search inside the training fold), random forest
(300 trees), histogram gradient boosting, and an MLP with the NestedAE stage's
capacity (hidden layers 12 and 100). Inputs are standardised inside each training
fold; categorical inputs are one-hot encoded.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources as _res
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .chemistry.features import PAPER_DESCRIPTORS
from .model.presets import preset
from .vocabulary import DEVICE_GROUP_COLUMNS, ETL, HTL, SITE_FRACTION_COLUMNS
from .data.tables import check_stage_table, load_dataset_table
from .train import cross_validate, make_folds, regression_metrics, summarize_folds

__all__ = [
    "TASKS",
    "BASELINES",
    "accuracy_benchmark",
    "speed_benchmark",
    "load_benchmark",
    "write_json_atomic",
    "shipped_benchmark_paths",
]

logger = logging.getLogger(__name__)

_FRACTIONS = list(SITE_FRACTION_COLUMNS)

#: Task name -> description of inputs, target and the NestedAE preset used.
TASKS: dict[str, dict[str, Any]] = {
    "bandgap-paper": {
        "dataset": "mhp-pbe-paper",
        "target": "Gap",
        "unit": "eV",
        "numeric": list(PAPER_DESCRIPTORS),
        "categorical": [],
        "groups": ["Formula"],
        "preset": "paper",
        "stage": "materials",
        "description": "band gap from the paper's 15 site descriptors (NestedAE paper's stage-1 file)",
    },
    "bandgap-pbe": {
        "dataset": "mhp-pbe",
        "target": "Gap",
        "unit": "eV",
        "numeric": list(PAPER_DESCRIPTORS) + _FRACTIONS,
        "categorical": ["phase"],
        "groups": ["Formula"],
        "preset": "pbe-extended",
        "stage": "materials",
        "description": "band gap from 15 descriptors + 14 site fractions + phase (newer PBE release)",
    },
    "pce-devices": {
        "dataset": "psc-devices",
        "target": "JV_reverse_scan_PCE",
        "unit": "%",
        "numeric": list(PAPER_DESCRIPTORS),
        "categorical": [ETL, HTL],
        "groups": list(DEVICE_GROUP_COLUMNS),
        "preset": "paper",
        "stage": "devices",
        "description": "device PCE from the absorber's 15 descriptors + ETL + HTL (NestedAE: stage-1 latents + ETL + HTL)",
    },
}


def _baseline_factories(seed: int) -> dict[str, Callable[[], Any]]:
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neural_network import MLPRegressor

    return {
        "mean": lambda: None,
        "ridge": lambda: RidgeCV(alphas=np.logspace(-4, 3, 15)),
        "kernel_ridge": lambda: GridSearchCV(
            KernelRidge(kernel="rbf"),
            {"alpha": [1e-3, 1e-2, 1e-1, 1.0], "gamma": [0.01, 0.03, 0.1, 0.3]},
            cv=KFold(3, shuffle=True, random_state=seed),
            scoring="neg_mean_absolute_error",
        ),
        "random_forest": lambda: RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=-1),
        "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(random_state=seed),
        "mlp": lambda: MLPRegressor(hidden_layer_sizes=(12, 100), activation="relu", max_iter=3000, learning_rate_init=1e-3, random_state=seed),
    }


#: Names of the baseline models, in report order.
BASELINES: tuple[str, ...] = ("mean", "ridge", "kernel_ridge", "random_forest", "hist_gradient_boosting", "mlp")


def _design(table: pd.DataFrame, numeric: list[str], categorical: list[str]) -> np.ndarray:
    parts = [table[numeric].to_numpy(dtype=np.float64)]
    for c in categorical:
        parts.append(pd.get_dummies(table[c].astype(str)).to_numpy(dtype=np.float64))
    return np.concatenate(parts, axis=1)


def _fit_baseline(name: str, factory: Callable[[], Any], X: np.ndarray, y: np.ndarray, folds: np.ndarray, n_numeric: int) -> tuple[dict[str, Any], float]:
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    per_fold = []
    for f in range(int(folds.max()) + 1):
        tr, va = folds != f, folds == f
        ok = tr & np.isfinite(y)
        if name == "mean":
            pred = np.full(va.sum(), float(np.mean(y[ok])))
        else:
            sc = StandardScaler().fit(X[ok][:, :n_numeric])
            Xtr = np.concatenate([sc.transform(X[ok][:, :n_numeric]), X[ok][:, n_numeric:]], axis=1)
            Xva = np.concatenate([sc.transform(X[va][:, :n_numeric]), X[va][:, n_numeric:]], axis=1)
            ym, ys = float(np.mean(y[ok])), float(np.std(y[ok]) or 1.0)
            est = factory().fit(Xtr, (y[ok] - ym) / ys)
            pred = est.predict(Xva) * ys + ym
        m = regression_metrics(y[va], pred)
        m["fold"] = f
        per_fold.append(m)
    return summarize_folds(per_fold), time.perf_counter() - t0


def accuracy_benchmark(
    tasks: list[str] | None = None,
    *,
    split: str = "random",
    folds: int = 5,
    seed: int = 0,
    models: list[str] | None = None,
    data_dir: str | None = None,
    epochs: int | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run NestedAE and the baselines on identical folds; returns the JSON-ready report.

    ``models`` restricts which models run (``nestedae`` and names in :data:`BASELINES`);
    ``epochs`` overrides the NestedAE epochs (for quick runs). The report holds, per
    task, ``models``: name -> ``{"mae", "mae_std", "rmse", "r2", "n", "seconds", "folds": [...]}``.
    """
    tasks = list(tasks or TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"unknown benchmark task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    wanted = list(models or ["nestedae", *BASELINES])
    bad = [m for m in wanted if m != "nestedae" and m not in BASELINES]
    if bad:
        raise ConfigError(f"unknown model(s) {', '.join(bad)}; known: nestedae, {', '.join(BASELINES)}")
    say = progress or (lambda msg: None)
    factories = _baseline_factories(seed)
    report: dict[str, Any] = {
        "kind": "accuracy",
        "split": split,
        "folds": folds,
        "seed": seed,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": _machine(),
        "tasks": {},
    }
    chain_cache: dict[str, Any] = {}
    for task in tasks:
        cfg = TASKS[task]
        spec = preset(cfg["preset"], epochs=epochs, folds=folds, split=split, seed=seed)
        st = next(s for s in spec.stages if s.name == cfg["stage"])
        raw = load_dataset_table(cfg["dataset"], data_dir)
        upstream_cols = list(PAPER_DESCRIPTORS) if st.upstream else []
        table = check_stage_table(st, raw, upstream_cols)
        fold_ids = make_folds(table, folds, split, cfg["groups"], seed)
        y = table[cfg["target"]].to_numpy(dtype=np.float64)
        entry: dict[str, Any] = {
            "dataset": cfg["dataset"],
            "target": cfg["target"],
            "unit": cfg["unit"],
            "n": int(len(table)),
            "description": cfg["description"],
            "groups": cfg["groups"],
            "models": {},
        }
        if "nestedae" in wanted:
            say(f"{task}: nestedae ({cfg['preset']})")
            key = f"{cfg['preset']}"
            if key not in chain_cache:
                t0 = time.perf_counter()
                chain_cache[key] = (cross_validate(spec, data_dir=data_dir, device=device), time.perf_counter() - t0)
            result, secs = chain_cache[key]
            if not np.array_equal(result.folds[st.name], fold_ids):
                raise DataError(f"internal error: NestedAE folds differ from the baseline folds in task {task}")
            m = dict(result.metrics[st.name][cfg["target"]])
            m["seconds"] = round(secs, 2)
            m["preset"] = cfg["preset"]
            entry["models"]["nestedae"] = m
        X = _design(table, cfg["numeric"], cfg["categorical"])
        for name in BASELINES:
            if name not in wanted:
                continue
            say(f"{task}: {name}")
            m, secs = _fit_baseline(name, factories[name], X, y, fold_ids, len(cfg["numeric"]))
            m["seconds"] = round(secs, 2)
            entry["models"][name] = m
        report["tasks"][task] = entry
    return report


def _machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def _peak_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def speed_benchmark(*, data_dir: str | None = None, device: str = "auto", n_predict: int = 1000, repeats: int = 3, epochs: int | None = None) -> dict[str, Any]:
    """Time 5-fold training of both stages of the ``paper`` chain and chain predictions.

    Returns seconds for training (per stage and total, data already loaded),
    seconds for predicting ``n_predict`` compositions through the chain (best of
    ``repeats``, featurisation included) and the process's peak resident memory (MiB).
    """
    from .chemistry.composition import composition_grid
    from .predict import predict_table
    from .query import query_frame

    spec = preset("paper", epochs=epochs)
    from .data.tables import load_chain_tables

    tables = load_chain_tables(spec, None, data_dir)
    t0 = time.perf_counter()
    result = cross_validate(spec, tables, device=device)
    train_s = time.perf_counter() - t0
    grid = composition_grid(["Cs", "MA", "FA"], ["Pb", "Sn"], ["I", "Br", "Cl"], 0.05)
    rng = np.random.default_rng(0)
    grid = grid[rng.choice(len(grid), size=min(n_predict, len(grid)), replace=len(grid) < n_predict)]
    from .chemistry.composition import IONS, Composition

    comps = [Composition.from_fractions(dict(zip(IONS, row))) for row in grid]
    best = float("inf")
    for _ in range(repeats):
        t1 = time.perf_counter()
        frame = query_frame(result.model, comps)
        predict_table(result.model, frame)
        best = min(best, time.perf_counter() - t1)
    return {
        "kind": "speed",
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": _machine(),
        "device": str(result.model.device),
        "train_seconds_total": round(train_s, 2),
        "train_seconds_per_stage": {k: round(v, 2) for k, v in result.seconds.items()},
        "epochs": {s.name: s.epochs for s in spec.stages},
        "folds": spec.folds,
        "predict_n": len(comps),
        "predict_seconds": round(best, 4),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "metrics": {s: {t: round(v["mae"], 4) for t, v in m.items()} for s, m in result.metrics.items()},
    }


def write_json_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write JSON to ``path`` via a temporary file in the same folder and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def load_benchmark(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a benchmark report written by :func:`accuracy_benchmark` (DataError if unreadable)."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"no benchmark file at {p}; run `nestedae benchmark accuracy --json {p}`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read benchmark file {p}: {exc}") from None
    if not isinstance(obj, dict) or "tasks" not in obj:
        raise DataError(f"{p} is not an accuracy benchmark report (no 'tasks')")
    return obj


def shipped_benchmark_paths() -> dict[str, Path]:
    """Benchmark reports shipped with the package, by split (``random``, ``grouped``) when present."""
    base = Path(str(_res.files("nestedae_core") / "bundles" / "benchmarks"))
    out = {}
    for split in ("random", "grouped"):
        p = base / f"accuracy-{split}.json"
        if p.is_file():
            out[split] = p
    return out
