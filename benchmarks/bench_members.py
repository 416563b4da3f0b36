"""Fold members trained at once (one batched network) against one at a time (issue 19, item 1).

For a preset chain, k-fold cross-validation as the library runs it (the k fold members of every
stage as one batched network, one optimiser step for all) against k separate one-member chains,
member ``m`` trained on the rows outside fold ``m`` (the same folds, the same seed). Prints wall
and CPU seconds of both, their ratio, and the out-of-fold MAE of every target both ways (they
differ by the random draws only: initial weights and dropout masks are drawn for all members at
once in the batched run). Asserts nothing.

    python benchmarks/bench_members.py [--preset paper] [--split random|grouped] [--epochs N] [--repeats 1]

Needs the datasets (NESTEDAE_DATA_DIR) for the paper and measured presets.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nestedae_core.perovskite.presets import preset
from nestedae_core.train import cross_validate, make_folds
from nestedae_core.train.stages import run_training


def one_at_a_time(spec):  # type: ignore[no-untyped-def]
    """k one-member chains, member m on the rows outside fold m; returns {stage: {target: oof MAE}}."""
    k = spec.folds
    oof: dict[str, np.ndarray] = {}
    targets: dict[str, tuple[list[str], np.ndarray]] = {}
    folds: dict[str, np.ndarray] = {}
    for m in range(k):
        def rows(index, st, table, m=m):  # type: ignore[no-untyped-def]
            folds[st.name] = make_folds(table, k, spec.split, st.group_columns, spec.seed)
            return (folds[st.name] != m)[None, :]

        trained = run_training(spec, None, data_dir=None, device="cpu", download=False, threads=None,
                               members=1, member_rows=rows, callback=None, should_stop=None)
        for st in trained.stages:
            name = st.spec.name
            pred = oof.setdefault(name, np.full(st.targets.shape, np.nan))
            sel = folds[name] == m
            pred[sel] = st.predictions[0][sel]
            targets[name] = (st.spec.target_columns, st.targets)
    return {name: {t: float(np.nanmean(np.abs(oof[name][:, j] - y[:, j]))) for j, t in enumerate(cols)}
            for name, (cols, y) in targets.items()}


def batched(spec):  # type: ignore[no-untyped-def]
    """The library's cross-validation; returns {stage: {target: oof MAE}} over every row."""
    r = cross_validate(spec, device="cpu", download=False)
    return {name: {t: float(np.nanmean(np.abs(o[f"{t}_pred"] - o[f"{t}_true"]))) for t in r.metrics[name]}
            for name, o in r.oof.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--split", choices=["random", "grouped"], default=None)
    ap.add_argument("--epochs", type=int, default=None, help="every stage's epochs (default: the preset's)")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    spec = preset(a.preset, split=a.split, epochs=a.epochs)
    times: dict[str, list[tuple[float, float]]] = {"batched": [], "one at a time": []}
    maes = {}
    for _ in range(a.repeats):
        for what, run in (("batched", batched), ("one at a time", one_at_a_time)):
            t, c = time.perf_counter(), time.process_time()
            maes[what] = run(spec)
            times[what].append((time.perf_counter() - t, time.process_time() - c))
    print(f"{a.preset} chain, {spec.folds} folds, split {spec.split}, epochs {[s.epochs for s in spec.stages]}")
    for what, ts in times.items():
        w, c = min(t[0] for t in ts), min(t[1] for t in ts)
        mae = ", ".join(f"{s}/{t} {v:.4f}" for s, m in maes[what].items() for t, v in m.items())
        print(f"  {what:14s} {w:7.1f} s wall {c:7.1f} s CPU (best of {len(ts)})  out-of-fold MAE: {mae}")
    w = min(t[0] for t in times["one at a time"]) / min(t[0] for t in times["batched"])
    c = min(t[1] for t in times["one at a time"]) / min(t[1] for t in times["batched"])
    print(f"  batched is {w:.2f}x faster in wall time, {c:.2f}x in CPU time")


if __name__ == "__main__":
    main()
