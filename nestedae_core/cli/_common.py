"""Helpers shared by the CLI sub-commands (formatting, progress bars, model loading)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from ..api import NestedAEError


def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO | None = None) -> None:
    """Print an aligned plain-text table."""
    out = out or sys.stdout
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
        if j == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def whole_number(minimum: int, what: str = "number", why: str = "") -> Callable[[str], int]:
    """An argparse ``type`` accepting whole numbers >= ``minimum``; errors name ``what`` (and ``why`` it must be so)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} '{text}': give a whole number of at least {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"invalid {what} {value}: {why or f'it must be at least {minimum}'}")
        return value

    return parse


def print_json(obj: Any) -> None:
    """Print JSON (indent 2) to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False, default=float) + "\n")


def named(label: str, fidelity: str | None, phase: str | None = None) -> str:
    """A target's name: a band gap by its fidelity and, for a DFT gap, its phase
    (``named("band gap", "HSE", "Cubic") == "band gap, DFT HSE06+SOC (cubic)"``; the words of
    :func:`nestedae_core.perovskite.fidelity.gap_name`); any other target by its ``label``."""
    from ..api import quantity_name

    return quantity_name(label, fidelity, phase)


def uncertainty_text(entry: Mapping[str, Any], digits: int = 3) -> str:
    """``90 % interval 1.520–1.660`` for a calibrated prediction, else ``± 0.022 (model disagreement)``.

    ``entry``: a target of :attr:`nestedae_core.predict.QueryResult.targets` (no unit in the text).
    """
    if entry["lower"] is not None and entry["upper"] is not None:
        return f"{100 * entry['level']:.0f} % interval {entry['lower']:.{digits}f}–{entry['upper']:.{digits}f}"
    return f"± {entry['disagreement']:.{digits}f} (model disagreement)"


def load_model(ref: str | None):  # type: ignore[no-untyped-def]
    """The model ``--model NAME|DIR`` names; the default model when ``ref`` is empty.

    ``ref`` is, in this order: an existing bundle folder; the name of a shipped model
    (``measured-default``, ``paper-default``); the name of a model saved in
    :func:`nestedae_core.store.models_dir` (the Train page or ``nestedae train --out``).
    An unknown name raises :class:`~nestedae_core.errors.BundleError` listing the names that exist.
    """
    import os
    from pathlib import Path

    from ..api import (
        SHIPPED_BUNDLE_NAMES, BundleError, list_bundles, load_bundle, load_default_bundle, models_dir,
        shipped_bundle_path,
    )

    if not ref:
        return load_default_bundle()
    path = Path(ref).expanduser()
    if path.is_dir():
        return load_bundle(path)
    looks_like_path = os.sep in ref or (os.altsep is not None and os.altsep in ref) or ref.startswith((".", "~"))
    if not looks_like_path:
        if ref in SHIPPED_BUNDLE_NAMES:
            return load_bundle(shipped_bundle_path(ref))
        saved = models_dir() / ref
        if saved.is_dir():
            return load_bundle(saved)
    if path.exists():
        raise BundleError(f"--model {ref} is not a folder; give a model bundle folder or a model name")
    saved_names = [b.name + (" (broken)" if b.broken else "") for b in list_bundles(include_default=False)]
    names = [*SHIPPED_BUNDLE_NAMES, *saved_names]
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    if looks_like_path:
        raise BundleError(f"no model bundle at {ref}; give an existing bundle folder or one of the models: {shown}")
    raise BundleError(f"no model named '{ref}' (neither shipped nor saved in {models_dir()}); models: {shown}")


def check_data_dir(value: str | None) -> None:
    """Refuse a ``--data-dir`` that is not an existing folder (it would otherwise be ignored silently)."""
    if value is None:
        return
    import os

    from ..api import DataError

    if not value.strip():
        raise DataError("--data-dir is empty; give the folder holding the dataset files")
    if not os.path.isdir(value):
        what = "is not a folder" if os.path.exists(value) else "does not exist"
        raise DataError(f"--data-dir {value} {what}; give the folder holding the dataset files (or drop --data-dir)")


def check_common_args(args: argparse.Namespace) -> None:
    """Checks of arguments several commands share, run before the command: ``--data-dir``."""
    check_data_dir(getattr(args, "data_dir", None))


def check_output_file(path: str | None, flag: str = "--json") -> None:
    """Before a long run: refuse an output path that cannot be written (special file, missing or read-only folder).

    The write itself goes through :mod:`nestedae_core.io_safe` (disk full is reported then).
    """
    if not path:
        return
    import os
    from pathlib import Path

    from ..api import OutputError, refuse_special

    p = Path(path)
    try:
        refuse_special(p)
    except OutputError as exc:
        raise OutputError(f"{flag}: {exc}") from None
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{flag}: cannot write {p}: the folder {folder} does not exist; create it first or choose another location")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{flag}: cannot write {p}: no permission to write in {folder}; choose a folder you can write to")


def write_json_file(obj: Any, path: str, *, indent: int = 1) -> None:
    """Write JSON to ``path`` atomically (temp file + rename, :mod:`nestedae_core.io_safe`); NaN is written as ``NaN``."""
    from ..api import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=indent, default=float) + "\n")


class ProgressBar:
    """A tqdm bar on stderr driven by nestedae_core.train.ProgressEvent callbacks."""

    def __init__(self, disable: bool = False) -> None:
        self._disable = disable
        self._bar: Any = None  # created at the first event, so early errors print cleanly
        self._done = 0

    def __call__(self, ev: Any) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=1000, file=sys.stderr, disable=self._disable, bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
        pos = int(round(ev.fraction * 1000))
        if pos > self._done:
            self._bar.update(pos - self._done)
            self._done = pos
        self._bar.set_description(f"{ev.stage} {ev.epoch}/{ev.epochs}", refresh=False)
        post = f"loss {ev.loss:.4f}" + (f" val {ev.val_loss:.4f}" if ev.val_loss is not None else "")
        self._bar.set_postfix_str(post, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


__all__ = [
    "print_table",
    "print_json",
    "whole_number",
    "named",
    "uncertainty_text",
    "load_model",
    "check_data_dir",
    "check_common_args",
    "check_output_file",
    "write_json_file",
    "ProgressBar",
    "NestedAEError",
]
