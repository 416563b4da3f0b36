"""Speed: seconds for 5-fold training of the ``paper`` chain and for predictions through it."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..model.presets import preset
from ..train import cross_validate
from .reports import created_now, machine_info, peak_rss_mib

__all__ = ["speed_benchmark"]


def speed_benchmark(*, data_dir: str | None = None, device: str = "auto", n_predict: int = 1000, repeats: int = 3, epochs: int | None = None) -> dict[str, Any]:
    """Time 5-fold training of both stages of the ``paper`` chain and chain predictions.

    Returns seconds for training (per stage and total, data already loaded),
    seconds for predicting ``n_predict`` compositions through the chain (best of
    ``repeats``, featurisation included) and the process's peak resident memory (MiB).
    """
    import time

    from ..chemistry.composition import IONS, Composition, composition_grid
    from ..data.tables import load_chain_tables
    from ..predict import predict_table
    from ..query import query_frame

    spec = preset("paper", epochs=epochs)
    tables = load_chain_tables(spec, None, data_dir)
    t0 = time.perf_counter()
    result = cross_validate(spec, tables, device=device)
    train_s = time.perf_counter() - t0
    grid = composition_grid(["Cs", "MA", "FA"], ["Pb", "Sn"], ["I", "Br", "Cl"], 0.05)
    rng = np.random.default_rng(0)
    grid = grid[rng.choice(len(grid), size=min(n_predict, len(grid)), replace=len(grid) < n_predict)]
    comps = [Composition.from_fractions(dict(zip(IONS, row))) for row in grid]
    best = float("inf")
    for _ in range(repeats):
        t1 = time.perf_counter()
        frame = query_frame(result.model, comps)
        predict_table(result.model, frame)
        best = min(best, time.perf_counter() - t1)
    return {
        "kind": "speed",
        "created": created_now(),
        "machine": machine_info(),
        "device": str(result.model.device),
        "train_seconds_total": round(train_s, 2),
        "train_seconds_per_stage": {k: round(v, 2) for k, v in result.seconds.items()},
        "epochs": {s.name: s.epochs for s in spec.stages},
        "folds": spec.folds,
        "predict_n": len(comps),
        "predict_seconds": round(best, 4),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "metrics": {s: {t: round(v["mae"], 4) for t, v in m.items()} for s, m in result.metrics.items()},
    }
