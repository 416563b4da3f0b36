"""Batch prediction: time and peak memory of `nestedae predict --csv` for 1,000 and 100,000 rows.

Bounded memory means the peak RSS does not grow with the number of rows: the
input is read and the output written in chunks (nestedae_core.batch). Each size
runs in a fresh process (the CLI, as a user runs it), so its peak RSS is its own.

    NESTEDAE_DATA_DIR=/work/shared/data python benchmarks/bench_batch_memory.py [--rows 1000 100000] [--model NAME]

Prints one line per size: rows, wall time (s), rows per second, peak RSS (MiB),
and the ratio of the peak RSS to that of the smallest size.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import numpy as np


def write_input(path: Path, rows: int, seed: int = 0) -> None:
    """A CSV of ``rows`` random mixed compositions (A: MA/FA/Cs, B: Pb/Sn, X: I/Br), some with stacks, 1 % bad rows."""
    rng = np.random.default_rng(seed)
    etls = ["", "SnO2-c", "TiO2-c | TiO2-mp", "PCBM-60"]
    with path.open("w") as fh:
        fh.write("formula,etl,htl\n")
        a = rng.dirichlet([1, 1, 0.3], rows)
        sn = rng.uniform(0, 0.5, rows) * (rng.random(rows) < 0.3)
        br = rng.uniform(0, 3, rows)
        bad = rng.random(rows) < 0.01
        for i in range(rows):
            if bad[i]:
                fh.write("Xx0.5PbI3,,\n")
                continue
            ma, fa, cs = np.round(a[i], 3)
            cs = round(1 - ma - fa, 3)
            parts = [f"MA{ma:g}" if ma > 0 else "", f"FA{fa:g}" if fa > 0 else "", f"Cs{cs:g}" if cs > 0 else ""]
            b = f"Pb{1 - sn[i]:.3g}Sn{sn[i]:.3g}" if sn[i] > 0 else "Pb"
            x = f"Br{br[i]:.3g}I{3 - br[i]:.3g}" if br[i] > 0.005 else "I3"
            fh.write(f"{''.join(parts)}{b}{x},{etls[i % len(etls)]},\n")


def run(rows: int, folder: Path, model: str | None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one CLI run on a generated file of ``rows`` rows (the run: batch_100k.run)."""
    from batch_100k import run as run_cli  # a sibling script: the same child-process measurement

    src, out = folder / f"in-{rows}.csv", folder / f"out-{rows}.csv"
    write_input(src, rows)
    wall, peak_mib, written = run_cli(src, out, model)
    assert written == rows, (written, rows)
    return wall, peak_mib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1000, 100_000])
    p.add_argument("--model", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        print(f"{'rows':>8}  {'wall s':>8}  {'rows/s':>8}  {'peak RSS MiB':>12}  {'RSS ratio':>9}")
        for rows in sorted(args.rows):
            wall, peak = run(rows, Path(tmp), args.model)
            base = base or peak
            print(f"{rows:>8}  {wall:>8.1f}  {rows / wall:>8.0f}  {peak:>12.0f}  {peak / base:>9.2f}", flush=True)
    _ = resource  # the children report their own peak (RUSAGE_SELF inside each run)


if __name__ == "__main__":
    main()
