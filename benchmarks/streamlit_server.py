"""Start and stop the dashboard's server: ``streamlit run streamlit_app.py`` on a free loopback port.

The checkout's server helper for the benchmarks (``load_test.py``) and the tests
(``tests/app_driver.py``): this checkout's :data:`REPO` and :data:`ENTRY` over the
library's :mod:`nestedae_core.benchmark.app_server` (which ``nestedae benchmark
speed --dashboard`` uses too). Plain functions, no pytest:

* :func:`free_port`: a free TCP port on 127.0.0.1;
* :func:`start_server`: the server as a child process, its output in a log file;
* :func:`wait_healthy`: poll ``/_stcore/health`` until it answers 200 (:class:`ServerError` otherwise);
* :func:`stop_process`: SIGTERM, then SIGKILL after 15 s (the server, or any child process; or its whole group).

Import it as ``benchmarks.streamlit_server`` with the repository root on
``sys.path`` (tests), or as ``streamlit_server`` from a script in this folder.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: The checkout's root (where ``streamlit_app.py`` lives).
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's library, also when run as a script from this folder
    sys.path.insert(0, str(REPO))

from nestedae_core.benchmark import app_server  # noqa: E402
from nestedae_core.benchmark.app_server import ServerError, free_port, stop_process, wait_healthy  # noqa: E402

__all__ = ["REPO", "ENTRY", "ServerError", "free_port", "server_command", "start_server", "wait_healthy", "stop_process"]

#: The dashboard's entry script.
ENTRY = REPO / app_server.APP_ENTRY


def server_command(port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, loopback only, no usage statistics, no source watcher."""
    return app_server.server_command(port, ENTRY.name)


def start_server(env: dict[str, str], port: int, log: Path, *, new_session: bool = False) -> subprocess.Popen:
    """Start the dashboard's server on ``port`` (run from the checkout's root); stdout and stderr go to ``log``.

    ``new_session``: start it in a process group of its own (so that
    :func:`stop_process` with ``group=True`` also stops the job workers it spawns).
    """
    return app_server.start_server(env, port, log, entry=ENTRY, new_session=new_session)
