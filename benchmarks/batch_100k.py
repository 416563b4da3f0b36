"""Batch prediction of 100,000 rows: `nestedae predict --csv IN --out OUT`, time and peak memory.

Two input files, each run by the CLI in a fresh process (as a user runs it):

* ``same``: one composition (MAPbI3) spelled many ways (``CH3NH3PbI3``, ``MA1Pb1I3``,
  ``MAPbI₃``, full-width letters, brackets, underscores, ...), with ETL/HTL cells;
* ``distinct``: 100,000 distinct mixed compositions (A: Cs/FA/MA, B: Pb/Sn, X: Br/I,
  amounts to 4 decimals), 1 % of them bad rows (an unknown ion, a blank formula).

    NESTEDAE_DATA_DIR=/work/shared/data python benchmarks/batch_100k.py [--rows 100000] [--which same distinct] [--model NAME]

Prints, per file: rows, wall time of the whole command (s, start-up included), rows
per second, the CPU seconds the command used (user + system, all its threads: on a shared
machine the figure to compare, wall time waits for the other users), and the child's peak
resident memory (MiB; ``ru_maxrss`` read inside the child at exit). The target (issue 19): at most 20 s per file on the project's 2-core
machine, memory bounded (the input is read and written in chunks).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: MAPbI3, spelled as the literature and the data sets spell it.
SPELLINGS: tuple[str, ...] = (
    "MAPbI3", "CH3NH3PbI3", "MA1Pb1I3", "MA1.0Pb1.0I3.0", "MAPb1I3", "(MA)PbI3", "MAPb(I)3", "MA_1Pb_1I_3",
    "MAPbI₃", "MAPbI³", "ＭＡＰｂＩ３", " MAPbI3 ", "MA Pb I3", "[MA]PbI3", "{MA}Pb{I}3", "MAPbI1.5I1.5",
    "(CH3NH3)PbI3", "MAPb(I1)3", "(MAPbI3)1", "MA1.000Pb1.000I3.000", "MAPbI2.99", "MAPbI3.01", "MA0.5MA0.5PbI3",
    "(MAPbI3)0.5(MAPbI3)0.5",
)
_ETLS = ("", "SnO2-c", "TiO2-c | TiO2-mp", "PCBM-60")
_HTLS = ("", "Spiro-MeOTAD")


def write_same(path: Path, rows: int) -> None:
    """``rows`` rows of MAPbI3 in :data:`SPELLINGS`, cycling, with ETL/HTL cells (some blank)."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("formula,etl,htl\n")
        for i in range(rows):
            fh.write(f"\"{SPELLINGS[i % len(SPELLINGS)]}\",{_ETLS[i % len(_ETLS)]},{_HTLS[(i // 7) % len(_HTLS)]}\n")


def distinct_formulas(rows: int, seed: int = 0) -> list[str]:
    """``rows`` distinct formulas of mixed compositions (Cs/FA/MA, Pb/Sn, Br/I; amounts to 4 decimals)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < rows:
        n = rows - len(out) + 1000
        a = np.round(rng.dirichlet([0.5, 1.0, 1.0], n), 4)
        sn = np.round(rng.uniform(0, 1, n) * (rng.random(n) < 0.4), 4)
        br = np.round(rng.uniform(0, 3, n) * (rng.random(n) < 0.8), 4)
        for k in range(n):
            cs, fa = a[k, 0], a[k, 1]
            ma = round(1.0 - cs - fa, 4)
            parts = [f"Cs{cs:g}" if cs > 0 else "", f"FA{fa:g}" if fa > 0 else "", f"MA{ma:g}" if ma > 0 else ""]
            if not any(parts):
                continue
            b = f"Pb{1 - sn[k]:.4g}Sn{sn[k]:.4g}" if 0 < sn[k] < 1 else ("Sn" if sn[k] >= 1 else "Pb")
            x = f"Br{br[k]:.4g}I{3 - br[k]:.4g}" if 0 < br[k] < 3 else "I3"
            f = "".join(parts) + b + x
            if f not in seen:
                seen.add(f)
                out.append(f)
                if len(out) == rows:
                    break
    return out


def write_distinct(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows of distinct formulas with ETL cells; 1 % bad rows (unknown ion, blank formula)."""
    formulas = distinct_formulas(rows, seed)
    rng = np.random.default_rng(seed + 1)
    bad = rng.random(rows) < 0.01
    with path.open("w", encoding="utf-8") as fh:
        fh.write("formula,etl,htl\n")
        for i, f in enumerate(formulas):
            if bad[i]:
                f = "" if i % 2 else "Xx" + f
            fh.write(f"{f},{_ETLS[i % len(_ETLS)]},\n")


def run(src: Path, out: Path, model: str | None) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB of the child, rows written) of one CLI run."""
    code = ("import resource, sys; from nestedae_core.cli import main; rc = main(sys.argv[1:]); "
            "sys.stderr.write('PEAK_KB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    argv = [sys.executable, "-c", code, "predict", "--csv", str(src), "--etl-column", "etl", "--htl-column", "htl", "--out", str(out)]
    if model:
        argv += ["--model", model]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{src.name}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    peak_kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB"))
    import pandas as pd

    written = len(pd.read_csv(out, usecols=["row"]))
    return wall, cpu, peak_kb / 1024, written


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--which", nargs="+", choices=["same", "distinct"], default=["same", "distinct"])
    p.add_argument("--model", default=None, help="model name or bundle (default: the shipped default)")
    p.add_argument("--keep", metavar="DIR", help="write the input and output files here instead of a temporary folder")
    args = p.parse_args()
    load = os.getloadavg()
    print(f"predict --csv, {args.rows:,} rows per file; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'file':<9} {'rows':>8} {'wall s':>8} {'CPU s':>8} {'rows/s':>8} {'peak RSS MiB':>13}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for which in args.which:
            src, out = folder / f"in-{which}.csv", folder / f"out-{which}.csv"
            (write_same if which == "same" else write_distinct)(src, args.rows)
            wall, cpu, peak, written = run(src, out, args.model)
            if written != args.rows:
                raise SystemExit(f"{which}: {written} rows written, expected {args.rows}")
            print(f"{which:<9} {args.rows:>8,} {wall:>8.1f} {cpu:>8.1f} {args.rows / wall:>8,.0f} {peak:>13.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
