"""Helpers shared by the CLI sub-commands (formatting, progress bars, model loading)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from ..errors import NestedAEError


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


def named(label: str, fidelity: str | None) -> str:
    """A target's label with its band-gap fidelity: ``named("band gap", "PBE") == "band gap (PBE)"``.

    Unchanged for a target that is not a band gap (``fidelity`` None) or whose label names it already.
    """
    if not fidelity or fidelity.lower() in label.lower():
        return label
    return f"{label} ({fidelity})"


def uncertainty_text(entry: Mapping[str, Any], digits: int = 3) -> str:
    """``90 % interval 1.520–1.660`` for a calibrated prediction, else ``± 0.022 (model disagreement)``.

    ``entry``: a target of :attr:`nestedae_core.predict.QueryResult.targets` (no unit in the text).
    """
    if entry["lower"] is not None and entry["upper"] is not None:
        return f"{100 * entry['level']:.0f} % interval {entry['lower']:.{digits}f}–{entry['upper']:.{digits}f}"
    return f"± {entry['disagreement']:.{digits}f} (model disagreement)"


def load_model(path: str | None):  # type: ignore[no-untyped-def]
    """Load the bundle at ``path`` (a folder, or the name of a shipped model such as ``paper-default``), or the default model."""
    from pathlib import Path

    from ..store import SHIPPED_BUNDLE_NAMES, load_bundle, load_default_bundle, shipped_bundle_path

    if not path:
        return load_default_bundle()
    if path in SHIPPED_BUNDLE_NAMES and not Path(path).exists():
        return load_bundle(shipped_bundle_path(path))
    return load_bundle(path)


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


__all__ = ["print_table", "print_json", "whole_number", "named", "uncertainty_text", "load_model", "ProgressBar", "NestedAEError"]
