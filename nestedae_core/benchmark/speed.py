"""Speed: training both chains, predictions and cold commands, in seconds.

:func:`speed_benchmark` measures, on this machine and in one run:

* 5-fold training of the ``paper`` and ``measured`` chains (wall and CPU seconds, per
  stage, with the fold MAEs: a faster recipe must keep its accuracy);
* ``n_predict`` compositions featurised and predicted through each trained chain;
* cold commands, each a fresh Python process, run alternately ``repeats`` times:
  ``import torch``, ``nestedae predict MAPbI3`` and ``nestedae explain MAPbI3``; the
  report gives their medians and each command's excess over ``import torch`` (the
  floor of any command that loads a model) and its ratio to it;

The dashboard's speed (a fresh server, first page and every page warm) is
:mod:`.dashboard`: ``nestedae benchmark speed --dashboard`` (from a checkout, which ships the dashboard).

Times on a shared machine vary by 2x or more: compare figures measured side by side
(``benchmarks/side_by_side_training.sh`` runs an older commit alternately).
"""
from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .reports import created_now, machine_info, peak_rss_mib

__all__ = ["cold_command_seconds", "speed_benchmark", "training_seconds"]

logger = logging.getLogger(__name__)

#: The ``nestedae`` command as a fresh Python process (the console script without its launcher).
_CLI = "import sys; from nestedae_core.cli import main; sys.exit(main(sys.argv[1:]))"
#: The cold commands timed by :func:`cold_command_seconds`, by name.
COLD_COMMANDS: dict[str, list[str]] = {
    "import_torch": ["-c", "import torch"],
    "predict": ["-c", _CLI, "predict", "MAPbI3"],
    "explain": ["-c", _CLI, "explain", "MAPbI3"],
}


def training_seconds(preset_name: str, *, data_dir: str | None, device: str, epochs: int | None = None) -> dict[str, Any]:
    """5-fold cross-validation of a preset: wall and CPU seconds (data loaded beforehand), per-stage seconds, MAEs.

    Returns also the trained :class:`~nestedae_core.model.NestedAE` under ``"_model"`` (not JSON; removed by the caller).
    """
    from ..data.tables import load_chain_tables
    from ..perovskite.presets import preset
    from ..train import cross_validate

    spec = preset(preset_name, epochs=epochs)
    tables = load_chain_tables(spec, None, data_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    result = cross_validate(spec, tables, device=device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "seconds_per_stage": {k: round(v, 2) for k, v in result.seconds.items()},
        "epochs": {s.name: s.epochs for s in spec.stages},
        "folds": spec.folds,
        "split": spec.split,
        "device": str(result.model.device),
        "mae": {s: {t: round(v["mae"], 4) for t, v in m.items()} for s, m in result.metrics.items()},
        "mae_sd": {s: {t: round(v["mae_std"], 4) for t, v in m.items()} for s, m in result.metrics.items()},
        "_model": result.model,
    }


def _prediction_seconds(model: Any, n_predict: int, repeats: int) -> tuple[int, float]:
    """Best of ``repeats`` seconds for featurising and predicting ``n_predict`` compositions through ``model``."""
    from ..chemistry.composition import IONS, Composition, composition_grid
    from ..predict import predict_table
    from ..query import query_frame

    grid = composition_grid(["Cs", "MA", "FA"], ["Pb", "Sn"], ["I", "Br", "Cl"], 0.05)
    rng = np.random.default_rng(0)
    grid = grid[rng.choice(len(grid), size=min(n_predict, len(grid)), replace=len(grid) < n_predict)]
    comps = [Composition.from_fractions(dict(zip(IONS, row))) for row in grid]
    best = float("inf")
    for _ in range(repeats):
        t1 = time.perf_counter()
        predict_table(model, query_frame(model, comps))
        best = min(best, time.perf_counter() - t1)
    return len(comps), best


def cold_command_seconds(*, repeats: int = 3, env: dict[str, str] | None = None, timeout_s: float = 300.0) -> dict[str, Any]:
    """Seconds of each :data:`COLD_COMMANDS` entry as a fresh process, alternating, ``repeats`` rounds.

    Returns per command its runs and median; for the commands other than
    ``import_torch``, ``excess_over_import_torch_s`` (median of the per-round
    differences) and ``ratio_to_import_torch`` (ratio of the medians). CPU seconds
    (user + system) of each run come beside: ``cpu_runs``, ``cpu_median_s`` and
    ``cpu_excess_over_import_torch_s`` (steadier than wall seconds on a shared machine).
    A command that fails is reported with its exit code and last stderr line.
    """
    import resource

    run_env = dict(os.environ if env is None else env)
    runs: dict[str, list[float]] = {name: [] for name in COLD_COMMANDS}
    cpu_runs: dict[str, list[float]] = {name: [] for name in COLD_COMMANDS}
    failed: dict[str, str] = {}
    for _ in range(repeats):
        for name, args in COLD_COMMANDS.items():
            if name in failed:
                continue
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, *args], env=run_env, capture_output=True, text=True, timeout=timeout_s, cwd=tempfile.gettempdir())
            elapsed = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                lines = proc.stderr.strip().splitlines()
                failed[name] = f"exit code {proc.returncode}: {lines[-1] if lines else ''}"
                continue
            runs[name].append(round(elapsed, 3))
            cpu_runs[name].append(round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 3))
    out: dict[str, Any] = {"repeats": repeats}
    torch_runs = runs["import_torch"]
    for name, values in runs.items():
        entry: dict[str, Any] = {"runs": values, "median_s": round(statistics.median(values), 3) if values else None}
        if name in failed:
            entry["error"] = failed[name]
        if name != "import_torch" and values and len(torch_runs) == len(values):
            entry["excess_over_import_torch_s"] = round(statistics.median(v - t for v, t in zip(values, torch_runs)), 3)
            entry["ratio_to_import_torch"] = round(statistics.median(values) / statistics.median(torch_runs), 2)
        if values:
            entry["cpu_runs"] = cpu_runs[name]
            entry["cpu_median_s"] = round(statistics.median(cpu_runs[name]), 3)
            if name != "import_torch" and len(cpu_runs["import_torch"]) == len(values):
                entry["cpu_excess_over_import_torch_s"] = round(
                    statistics.median(v - t for v, t in zip(cpu_runs[name], cpu_runs["import_torch"])), 3)
        out[name] = entry
    return out


def speed_benchmark(
    *,
    data_dir: str | None = None,
    device: str = "auto",
    n_predict: int = 1000,
    repeats: int = 3,
    epochs: int | None = None,
    presets: tuple[str, ...] = ("paper", "measured"),
    cold: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every speed figure of this module's docstring in one report (seconds; memory in MiB).

    ``repeats``: rounds of the cold commands and best-of count of the predictions;
    ``epochs`` overrides every stage's epochs (quick runs); ``presets``: the chains trained.
    """
    say = progress or (lambda msg: None)
    report: dict[str, Any] = {"kind": "speed", "created": created_now(), "machine": machine_info()}
    try:
        report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        pass
    report["training"] = {}
    report["predict_throughput"] = {}
    for name in presets:
        say(f"5-fold training of the {name} chain")
        tr = training_seconds(name, data_dir=data_dir, device=device, epochs=epochs)
        model = tr.pop("_model")
        report["training"][name] = tr
        n, best = _prediction_seconds(model, n_predict, repeats)
        report["predict_throughput"][name] = {"compositions": n, "seconds": round(best, 4)}
    if cold:
        say("cold commands (import torch, nestedae predict, nestedae explain)")
        env = dict(os.environ)
        if data_dir:
            env["NESTEDAE_DATA_DIR"] = data_dir
        report["cold"] = cold_command_seconds(repeats=repeats, env=env)
    report["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return report
