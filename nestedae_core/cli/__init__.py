"""The ``nestedae`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed namespace and returning an exit code). Errors derived from
:class:`nestedae_core.errors.NestedAEError` (and a few well-known OS errors)
become a one-line message on stderr and exit code 2; no traceback is shown.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Sequence

from ..api import __version__, NestedAEError

#: Sub-command modules, in the order they appear in ``nestedae --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "data_cmd",
    "featurize_cmd",
    "train_cmd",
    "sweep_cmd",
    "predict_cmd",
    "explain_cmd",
    "design_cmd",
    "benchmark_cmd",
)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line plus a hint (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"nestedae: error: {message} (see '{self.prog} --help')\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command, or only the command ``only`` (e.g. ``predict``).

    Registering a command imports its module, and some import the heavy parts of the
    library (training, benchmarks); a run of one command registers that one only,
    so that ``nestedae predict FORMULA`` starts without them.
    """
    parser = _Parser(prog="nestedae", description="NestedAE for halide perovskites: data, featurize, train, predict, explain, benchmark.")
    parser.add_argument("--version", action="version", version=f"nestedae {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    names = [f"{only}_cmd"] if only is not None and f"{only}_cmd" in COMMAND_MODULES else COMMAND_MODULES
    for name in names:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (its first word that is not an option), or None."""
    for word in argv:
        if not word.startswith("-"):
            return word
        if word in ("-h", "--help", "--version"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nestedae`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return _run(argv)


def _call(args: argparse.Namespace) -> int:
    """Run the parsed command. One query (``predict`` without ``--csv``, however the option was spelled) runs without
    the cyclic garbage collector: a process of seconds whose few cycles are freed on exit, which starts about
    0.1-0.3 s sooner without the collector's passes over torch's objects while torch imports; it is turned back on
    afterwards, also after an error. A batch keeps it, so its memory stays bounded."""
    if args.command == "predict" and getattr(args, "csv", None) is None and gc.isenabled():
        gc.disable()
        try:
            return int(args.func(args) or 0)
        finally:
            gc.enable()
    return int(args.func(args) or 0)


def _run(argv: list[str]) -> int:
    """:func:`main` for ``argv`` (a list of words)."""
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from ._common import check_common_args

        check_common_args(args)
        return _call(args)
    except NestedAEError as exc:
        print("nestedae: error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, always
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"nestedae: error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nestedae: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nestedae featurize ... | head`: the reader went away
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # disk full, read-only, ... outside nestedae_core.io_safe
        from ..api import os_error_message

        print(f"nestedae: error: {os_error_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
