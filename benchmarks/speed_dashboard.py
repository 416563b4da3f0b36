"""The dashboard's speed: a cold server's first page, then every page once warm, in seconds.

A thin wrapper of ``nestedae benchmark speed --dashboard`` (the library's
:mod:`nestedae_core.benchmark.dashboard`), run on this checkout's
``streamlit_app.py`` with this checkout's library; the options are the command's::

    python benchmarks/speed_dashboard.py [--data-dir DIR] [--page TITLE ...] [--json FILE]
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's library
    sys.path.insert(0, str(REPO))

from nestedae_core.cli import main as nestedae  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """``nestedae benchmark speed --dashboard --app <this checkout> ARGV``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return nestedae(["benchmark", "speed", "--dashboard", "--app", str(REPO), *args])


if __name__ == "__main__":
    sys.exit(main())
