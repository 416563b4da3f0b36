"""``nestedae featurize``: formula -> site fractions, descriptors, tolerance and octahedral factors.

Two modes::

    nestedae featurize "Cs0.05FA0.79MA0.16PbBr0.51I2.49" [--json] [--renormalize]
    nestedae featurize --csv IN.csv --formula-column COL --out OUT.csv [--renormalize]

The CSV mode keeps every input column (as text; a cell a spreadsheet would
run as a formula, starting with ``=``, ``+``, ``-`` or ``@``, gets a ``'`` in
front, see :mod:`nestedae_core.csv_safe`), adds the 14
fraction columns, the 36 descriptors, ``tolerance_factor``,
``octahedral_factor`` and ``error``, writes OUT atomically and reports
"featurized N rows, M failed" on stderr. Rows that fail to parse carry their
message in ``error`` and do not change the exit code (0); only an unusable
input file (missing, unreadable, not CSV, no such column) gives exit code 2.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any, NoReturn

import pandas as pd

from ..api import (
    DESCRIPTORS, DESCRIPTOR_LABELS, DESCRIPTOR_UNITS, OCTAHEDRAL_RANGE, SITE_IONS, TOLERANCE_RANGE, Composition,
    CompositionError, DataError, SiteTotalError, atomic_open, featurize, featurize_table, parse_formula,
    refuse_input_as_output,
)

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``featurize`` sub-command to the ``nestedae`` parser."""
    parser = subparsers.add_parser(
        "featurize",
        help="site fractions, descriptors, tolerance/octahedral factors of a formula or a CSV column",
        description=(
            "Parse a perovskite formula (e.g. MAPbI3, Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3, "
            "(FAPbI3)0.85(MAPbBr3)0.15) and show its site fractions, the 36 composition-weighted "
            "site descriptors, and the tolerance and octahedral factors; or featurize a CSV column."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("formula", nargs="?", metavar="FORMULA", help="a perovskite formula (quote it if it has spaces or parentheses)")
    source.add_argument("--csv", metavar="IN", help="featurize every row of this CSV file instead of one formula")
    parser.add_argument("--formula-column", metavar="COL", help="with --csv: the column holding the formulas")
    parser.add_argument("--out", metavar="OUT", help="with --csv: the CSV file to write (replaced atomically)")
    parser.add_argument("--json", action="store_true", help="with FORMULA: print one JSON object instead of a table")
    parser.add_argument("--renormalize", action="store_true", help="scale each site to its nominal total (A 1, B 1, X 3) instead of rejecting off totals")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        metavar="TOL",
        help="relative tolerance on site totals without --renormalize (default 0.02)",
    )
    parser.set_defaults(func=functools.partial(run, parser=parser))
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Execute ``nestedae featurize``; returns the exit code."""
    if args.csv is not None:
        if args.json:
            _usage(parser, "--json applies to a single FORMULA; with --csv the result is the --out CSV file")
        missing = [flag for flag, value in (("--formula-column", args.formula_column), ("--out", args.out)) if not value]
        if missing:
            _usage(parser, f"--csv needs {' and '.join(missing)}")
        return _run_csv(args)
    stray = [flag for flag, value in (("--formula-column", args.formula_column), ("--out", args.out)) if value]
    if stray:
        _usage(parser, f"{' and '.join(stray)} {'only apply' if len(stray) > 1 else 'only applies'} with --csv")
    return _run_formula(args)


def _usage(parser: argparse.ArgumentParser | None, message: str) -> NoReturn:
    if parser is not None:
        parser.error(message)  # exits with code 2 and a one-line message
    raise SystemExit(f"nestedae featurize: error: {message}")


def _parse(text: str, args: argparse.Namespace) -> Composition:
    """``parse_formula`` with the command line's wording of a site-total problem (``--renormalize``)."""
    try:
        return parse_formula(text, renormalize=args.renormalize, tolerance=args.tolerance)
    except SiteTotalError as exc:
        raise CompositionError(f"{exc.describe()}: fix the amounts, or add --renormalize to scale each site") from None


def _run_formula(args: argparse.Namespace) -> int:
    comp = _parse(args.formula, args)
    features = featurize(comp)
    if args.json:
        payload = {
            "formula": comp.formula,
            "fractions": comp.fractions(),
            "descriptors": {name: features[name] for name in DESCRIPTORS},
            "tolerance_factor": features["tolerance_factor"],
            "octahedral_factor": features["octahedral_factor"],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    print(_format_text(comp.formula, comp.fractions(), features))
    return 0


def _number(value: float) -> str:
    return f"{value:.6g}"


def _window(value: float, window: tuple[float, float]) -> str:
    low, high = window
    where = "inside" if low <= value <= high else ("below" if value < low else "above")
    return f"{where} the usual perovskite window {low}-{high}"


def _format_text(formula: str, fractions: dict[str, float], features: dict[str, float]) -> str:
    lines = [f"formula: {formula}", "", "site fractions (A, B: amount per formula unit; X: fraction of the X site)"]
    for site, ions in SITE_IONS.items():
        parts = [f"{ion} {_number(fractions[ion])}" for ion in ions if fractions[ion] > 0]
        lines.append(f"  {site}: " + ", ".join(parts))
    lines += ["", "descriptors"]
    width = max(len(name) for name in DESCRIPTORS)
    label_width = max(len(DESCRIPTOR_LABELS[name]) for name in DESCRIPTORS)
    for name in DESCRIPTORS:
        unit = DESCRIPTOR_UNITS[name]
        lines.append(f"  {name:<{width}}  {DESCRIPTOR_LABELS[name]:<{label_width}}  {_number(features[name]):>10}  {unit}".rstrip())
    t = features["tolerance_factor"]
    mu = features["octahedral_factor"]
    lines += [
        "",
        f"tolerance factor t = {t:.4f} ({_window(t, TOLERANCE_RANGE)})",
        f"octahedral factor mu = {mu:.4f} ({_window(mu, OCTAHEDRAL_RANGE)})",
    ]
    return "\n".join(lines)


def _read_csv(path: str) -> pd.DataFrame:
    from ..api import open_checked

    try:
        with open_checked(path) as stream:  # header width and line lengths bounded before and while pandas reads
            return pd.read_csv(stream, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"input CSV {path} is empty: it needs a header row and a formula column") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed"
        raise DataError(f"cannot read {path} as CSV ({detail}): check the delimiter and quoting") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {path} as CSV: it is not UTF-8 text") from None


def _write_atomically(table: pd.DataFrame, out: str) -> None:
    """Write ``table`` as CSV to ``out`` via a temp file beside it and a rename (OutputError if impossible).

    Text cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...) get a ``'`` in front.
    """
    from ..api import write_csv

    with atomic_open(out, "w", newline="") as handle:
        write_csv(table, handle, index=False)


def _run_csv(args: argparse.Namespace) -> int:
    refuse_input_as_output(args.out, args.csv, flag="--out")  # before reading: the input must survive
    frame = _read_csv(args.csv)
    table, n_failed = featurize_table(frame, args.formula_column, renormalize=args.renormalize, tolerance=args.tolerance)
    _write_atomically(table, args.out)
    print(f"featurized {len(table)} rows, {n_failed} failed", file=sys.stderr)
    return 0
