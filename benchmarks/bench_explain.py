"""Timings of the attribution methods of ``nestedae_core.explain``.

Usage::

    python benchmarks/bench_explain.py [--model DIR] [--rows 200] [--methods exact,permutation,gradient,kernel]

For each kind (band gap; PCE w.r.t. stage-2 inputs; PCE through the whole chain)
and each method it prints the seconds for one composition (target for the chain:
<= 1 s on 2 cores) and for ``--rows`` compositions (global view; target <= 10 s),
with the largest additivity error. ``exact`` on many rows is estimated from one
row (``2**F x background`` model rows per row; it is not what ``auto`` picks).
The first call in a process also pays shap's numba compilation; it is printed
separately as "cold start".

Without ``--model``, the shipped default bundle is used, or else a small paper
chain is trained (needs NESTEDAE_DATA_DIR).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nestedae_core import explain as E  # noqa: E402
from nestedae_core.perovskite import explain as PE  # noqa: E402
from nestedae_core.chemistry.composition import composition_grid  # noqa: E402
from nestedae_core.errors import NestedAEError  # noqa: E402
from nestedae_core.chemistry.features import featurize_fractions  # noqa: E402
from nestedae_core.query import query_frame  # noqa: E402


def _model(path: str | None):  # type: ignore[no-untyped-def]
    from nestedae_core.store import load_bundle, load_default_bundle

    if path:
        return load_bundle(path)
    try:
        return load_default_bundle()
    except NestedAEError:
        from nestedae_core.perovskite.presets import preset
        from nestedae_core.train import cross_validate

        print("no default bundle: training preset 'paper' for 150 epochs ...", flush=True)
        return cross_validate(preset("paper", epochs=150), device="cpu").model


def _queries(model, n: int, seed: int = 0) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    grid = composition_grid(["Cs", "FA", "MA"], ["Pb", "Sn"], ["Br", "I"], 0.125)
    grid = grid[rng.choice(len(grid), size=min(n, len(grid)), replace=False)]
    frame = featurize_fractions(grid).reset_index(drop=True)
    frame.insert(0, "formula", [f"grid{i}" for i in range(len(frame))])
    for p in model.prep:
        for col, cats in zip(p.categorical_columns, p.categories):
            frame[col] = rng.choice(cats, size=len(frame))
    return frame


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="bundle directory (default: shipped model or a freshly trained small one)")
    ap.add_argument("--rows", type=int, default=200, help="rows of the global explanation")
    ap.add_argument("--methods", default="exact,permutation,gradient,kernel")
    ap.add_argument("--kinds", default="bandgap,pce,chain")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model = _model(args.model)
    frame = _queries(model, args.rows)
    one = query_frame(model, ["MAPbI3"])
    fns = {"bandgap": PE.explain_bandgap, "pce": PE.explain_pce, "chain": E.explain_chain}
    kinds = [k for k in args.kinds.split(",") if k]
    methods = [m for m in args.methods.split(",") if m]

    t = time.perf_counter()
    PE.explain_bandgap(model, one, method="permutation")
    print(f"cold start (shap import + numba compilation, first call in a process): {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    PE.explain_bandgap(model, one, method="exact")
    print(f"cold start of the exact explainer's own numba code: {time.perf_counter() - t:.2f} s")
    print("auto picks: " + ", ".join(f"{k}: 1 row -> {fns[k](model, one, method='auto').explainer}" for k in kinds))
    print()
    rows = []
    for kind in kinds:
        fn = fns[kind]
        for m in methods:
            t = time.perf_counter()
            a1 = fn(model, one, method=m)
            s1 = time.perf_counter() - t
            F = len(a1.feature_names)
            if m == "exact":
                sn = s1 * len(frame)
                add = a1.additivity_error()
                note = f"estimated ({len(frame)} x one row); bg {a1.background_size}"
            else:
                t = time.perf_counter()
                an = fn(model, frame, method=m)
                sn = time.perf_counter() - t
                add = max(a1.additivity_error(), an.additivity_error())
                note = f"bg {an.background_size}"
            rows.append([kind, F, m, f"{s1:.3f}", f"{sn:.2f}", f"{add:.2e}", a1.unit, note])
            print("  ".join(map(str, rows[-1])), flush=True)
    print()
    header = ["kind", "features", "method", "1 row (s)", f"{len(frame)} rows (s)", "max additivity error", "unit", "note"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
