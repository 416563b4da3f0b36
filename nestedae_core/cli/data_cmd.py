"""``nestedae data``: list, fetch and locate the reference datasets.

- ``nestedae data list [--json]``: every dataset, its rows, where it was found
  (or how to get it; derived datasets: from which files) and whom to cite.
- ``nestedae data fetch [NAME | --all] [--force]``: download into the cache and
  verify the SHA-256 (a progress bar goes to stderr); for a derived dataset,
  its sources.
- ``nestedae data path NAME``: print the file's path (exit 2 when missing, or
  when the dataset is generated or derived and has no file of its own).
- ``nestedae data quality [--all] [--json FILE] [--data-dir DIR]``: the measured-gap
  label report of ``psc-gaps`` (:mod:`nestedae_core.data.gap_quality`): flagged
  labels with the reason, basis, devices and training weight, and the rules.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..api import (
    CACHE_ORIGIN, DATA_DIR_ENV, REGISTRY, DataError, DataMissingError, DatasetStatus, cache_dir, candidate_paths,
    dataset_info, dataset_status, derived_from_text, fetch_dataset, locate_dataset, missing_message, short_citation,
    verify_file,
)


def register(subparsers: Any) -> None:
    """Add the ``data`` command and its sub-commands to ``subparsers``."""
    parser = subparsers.add_parser(
        "data",
        help="list, download and locate the reference datasets",
        description=(
            "Reference datasets: looked up in an explicit path, then $%s, then the download cache (%s)."
            % (DATA_DIR_ENV, cache_dir())
        ),
    )
    parser.set_defaults(func=lambda args: _no_action(parser))
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))

    p_list = sub.add_parser("list", help="show every dataset, where it is and what to cite")
    p_list.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p_list.set_defaults(func=cmd_list)

    p_fetch = sub.add_parser("fetch", help="download datasets into the cache and verify their SHA-256")
    p_fetch.add_argument("name", nargs="?", metavar="NAME", help=f"dataset to fetch ({', '.join(REGISTRY)})")
    p_fetch.add_argument("--all", action="store_true", help="fetch every downloadable dataset")
    p_fetch.add_argument("--force", action="store_true", help="download again even if a verified copy exists")
    p_fetch.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    p_fetch.set_defaults(func=cmd_fetch)

    p_path = sub.add_parser("path", help="print where a dataset's file is (exit 2 if missing)")
    p_path.add_argument("name", metavar="NAME", help=f"dataset name ({', '.join(REGISTRY)})")
    p_path.set_defaults(func=cmd_path)

    p_quality = sub.add_parser("quality", help="measured-gap labels against their neighbours and a Vegard-plus-bowing fit",
                               description="The label report of psc-gaps: each composition's measured gap against a leave-one-out "
                                           "robust Vegard-plus-bowing fit and its neighbours, its gap basis and device count; "
                                           "outliers and suspect labels with the reason and their training weight. No row is dropped.")
    p_quality.add_argument("--all", action="store_true", help="list every label, not only the flagged ones")
    p_quality.add_argument("--json", metavar="FILE", help="write every label's quality columns to FILE (atomically)")
    p_quality.add_argument("--data-dir", help="folder holding the dataset files")
    p_quality.set_defaults(func=cmd_quality)


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _location(status: DatasetStatus) -> str:
    if status.derived_from:
        return "derived from " + ", ".join(status.derived_from) + ("" if status.available else " (missing)")
    if status.available:
        return str(status.path) if status.path is not None else "generated"
    if status.path is not None:
        return f"BAD FILE {status.path}"
    return "missing"


def cmd_list(args: argparse.Namespace) -> int:
    """``nestedae data list``: print a table (or JSON) of all datasets."""
    statuses = dataset_status()
    if args.json:
        rows = []
        for s in statuses:
            info = dataset_info(s.name)
            rows.append(
                {
                    "name": s.name,
                    "title": s.title,
                    "rows": s.rows,
                    "available": s.available,
                    "path": str(s.path) if s.path is not None else None,
                    "message": s.message,
                    "filename": info.filename or None,
                    "url": s.url or None,
                    "sha256": info.sha256 or None,
                    "citation": s.citation,
                    "short_citation": short_citation(s.name),
                    "doi": info.doi or None,
                    "license": info.license,
                    "kind": info.kind,
                    "derived_from": [
                        {"name": source, "filename": dataset_info(source).filename} for source in info.sources
                    ],
                }
            )
        print(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "ROWS", "LOCATION", "CITATION")]
    for s in statuses:
        table.append((s.name, "-" if s.rows is None else str(s.rows), _location(s), short_citation(s.name)))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip())
    problems = [s for s in statuses if not s.available]
    if problems:
        print()
        for s in problems:
            print(f"{s.name}: {s.message}")
    return 0


def _ready_copy(name: str) -> Path | None:
    """A verified copy that makes a download unnecessary, or None.

    A bad copy in the cache is simply replaced by the download; a bad copy in
    $NESTEDAE_DATA_DIR would shadow the download, so its error is raised.
    """
    info = dataset_info(name)
    for origin, candidate in candidate_paths(info):
        if not candidate.is_file():
            continue
        if origin == CACHE_ORIGIN:
            try:
                verify_file(info, candidate, origin)
            except DataError:
                return None
            return candidate
        verify_file(info, candidate, origin)  # raises for a bad data-dir copy
        return candidate
    return None


def _fetch_one(name: str, *, force: bool, timeout: float) -> None:
    info = dataset_info(name)
    if info.kind == "generated":
        print(f"{name}: generated on demand by nestedae_core.data.synthetic, nothing to download")
        return
    if info.kind == "derived":
        for source in info.sources:
            _fetch_one(source, force=force, timeout=timeout)
        print(f"{name}: {derived_from_text(name)}; its source(s) are ready")
        return
    if not force:
        ready = _ready_copy(name)
        if ready is not None:
            print(f"{name}: already present and verified at {ready} (use --force to download again)")
            return
    from tqdm.auto import tqdm

    with tqdm(desc=name, total=None, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False) as bar:

        def progress(done: int, total: int | None) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        saved = fetch_dataset(name, progress=progress, timeout=timeout, force=force)
    print(f"{name}: saved {saved}")
    try:
        used = locate_dataset(name)
    except DataError as exc:
        print(f"nestedae: warning: {exc}", file=sys.stderr)
        return
    if used is not None and used.resolve() != saved.resolve():
        print(f"nestedae: note: {name} is read from {used} ({DATA_DIR_ENV} takes precedence over the cache)", file=sys.stderr)


def cmd_fetch(args: argparse.Namespace) -> int:
    """``nestedae data fetch``: download one or all datasets; exit 2 if any failed."""
    if args.all and args.name:
        raise DataError("give either a dataset NAME or --all, not both")
    if not args.all and not args.name:
        raise DataError(f"name a dataset to fetch ({', '.join(REGISTRY)}) or use --all")
    if args.name:
        _fetch_one(args.name, force=args.force, timeout=args.timeout)
        return 0
    failed = 0
    for name, info in REGISTRY.items():
        if info.kind != "file":  # generated, or derived from files fetched here anyway
            continue
        try:
            _fetch_one(name, force=args.force, timeout=args.timeout)
        except DataError as exc:
            failed += 1
            print(f"nestedae: error: {exc}", file=sys.stderr)
    return 2 if failed else 0


def cmd_path(args: argparse.Namespace) -> int:
    """``nestedae data path NAME``: print the dataset's file path, or fail with exit 2."""
    info = dataset_info(args.name)
    if info.kind == "generated":
        raise DataError(f"dataset '{info.name}' is generated on demand and has no file; load it with nestedae_core.data.load('{info.name}')")
    if info.kind == "derived":
        raise DataError(
            f"dataset '{info.name}' has no file: it is {derived_from_text(info.name)} "
            f"(`nestedae data path {info.sources[0]}` gives a source's path)"
        )
    found = locate_dataset(info.name)
    if found is None:
        raise DataMissingError(missing_message(info))
    print(found)
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Print the measured-gap label report (and write it as JSON with ``--json``)."""
    import math

    from ..api import (
        COMPOSITION_KEY, GAP_BASIS, GAP_DEVICES, GAP_FIT, GAP_NEIGHBOURS, LABEL_QUALITY, LABEL_REASON, LABEL_WEIGHT,
        MEASURED_BANDGAP, N_NEIGHBOURS, QUALITY_RULE, WEIGHT_RULE, label_quality_counts, read_dataset,
    )
    from ._common import check_output_file, print_table, write_json_file

    check_output_file(args.json)
    table = read_dataset("psc-gaps", args.data_dir)
    counts = label_quality_counts(table)
    columns = [COMPOSITION_KEY, MEASURED_BANDGAP, GAP_FIT, GAP_NEIGHBOURS, N_NEIGHBOURS, GAP_DEVICES, GAP_BASIS,
               LABEL_QUALITY, LABEL_WEIGHT, LABEL_REASON]
    if args.json:
        records = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                   for r in table[columns].astype(object).to_dict(orient="records")]
        write_json_file({"counts": counts, "rule": QUALITY_RULE, "weight_rule": WEIGHT_RULE, "labels": records}, args.json)
    shown = table if args.all else table.loc[table[LABEL_QUALITY] != "ok"]
    shown = shown.sort_values([LABEL_QUALITY, COMPOSITION_KEY])

    def num(v: float, fmt: str = ".3f") -> str:
        return "-" if not math.isfinite(v) else format(v, fmt)

    rows = [[r[COMPOSITION_KEY], num(r[MEASURED_BANDGAP]), num(r[GAP_FIT]), num(r[GAP_NEIGHBOURS]), r[N_NEIGHBOURS],
             r[GAP_DEVICES], r[GAP_BASIS], r[LABEL_QUALITY], num(r[LABEL_WEIGHT], ".2f"), r[LABEL_REASON]]
            for r in shown.to_dict(orient="records")]
    print(f"psc-gaps: {len(table)} compositions; {counts['outlier']} outliers (weight 0), {counts['suspect']} suspect, "
          f"{counts['ok']} ok; {counts['single_device']} labels rest on one device")
    if rows:
        print_table(rows, ["composition", "gap (eV)", "fit (eV, LOO)", "neighbours (eV)", "n", "devices", "gap basis",
                           "quality", "weight", "reason"])
    print(f"\nrule: {QUALITY_RULE}\ntraining: {WEIGHT_RULE}")
    if args.json:
        print(f"\nwrote {args.json}")
    return 0
