"""Speed of parsing formulas, featurising compositions and building composition grids.

Usage::

    python benchmarks/bench_parse.py [--repeat 5]

Prints the best of ``--repeat`` timings (wall clock, this process, no dataset
needed) of:

* ``parse_formula`` on canonical formulas of a composition grid (formulas/s);
* ``featurize``, one composition at a time (compositions/s);
* ``featurize_fractions`` on a 10,000-row fraction matrix (rows/s; target: the
  10,000 rows in <= 0.1 s);
* ``composition_grid`` over Cs/MA/FA, Sn/Pb, Br/I at step 0.05, 101,871 rows
  (seconds; target <= 1 s).

The targets were wall-clock assertions of the test suite; the tests now check
only what these functions return.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nestedae_core.chemistry.composition import IONS, Composition, composition_grid, parse_formula  # noqa: E402
from nestedae_core.chemistry.features import featurize, featurize_fractions  # noqa: E402


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Shortest wall-clock time (s) of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timings per figure; the best is printed")
    args = ap.parse_args(argv)
    repeat = max(1, args.repeat)

    fractions = composition_grid(["Cs", "MA", "FA"], ["Sn", "Pb"], ["Cl", "Br", "I"], 0.1)[:10_000]
    formulas = [Composition.from_fractions(dict(zip(IONS, row))).formula for row in fractions[:2_000]]
    comps = [parse_formula(f) for f in formulas]

    rows = []
    s = best_seconds(lambda: [parse_formula(f) for f in formulas], repeat)
    rows.append(("parse_formula", f"{len(formulas):,} formulas", f"{s:.3f}", f"{len(formulas) / s:,.0f} formulas/s", ""))
    s = best_seconds(lambda: [featurize(c) for c in comps], repeat)
    rows.append(("featurize (one at a time)", f"{len(comps):,} compositions", f"{s:.3f}", f"{len(comps) / s:,.0f} compositions/s", ""))
    s = best_seconds(lambda: featurize_fractions(fractions), repeat)
    rows.append(("featurize_fractions", f"{len(fractions):,} rows", f"{s:.3f}", f"{len(fractions) / s:,.0f} rows/s", "<= 0.1 s"))
    grid = composition_grid(["Cs", "MA", "FA"], ["Sn", "Pb"], ["Br", "I"], 0.05)
    s = best_seconds(lambda: composition_grid(["Cs", "MA", "FA"], ["Sn", "Pb"], ["Br", "I"], 0.05), repeat)
    rows.append(("composition_grid (step 0.05)", f"{len(grid):,} rows", f"{s:.3f}", f"{len(grid) / s:,.0f} rows/s", "<= 1 s"))

    header = ("what", "size", "best (s)", "rate", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"best of {repeat} runs, wall clock")
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
