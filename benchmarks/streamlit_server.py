"""Start and stop the dashboard's server: ``streamlit run streamlit_app.py`` on a free loopback port.

The one server helper of the checkout, for the benchmarks (``load_test.py``,
``speed_dashboard.py``) and the tests (``tests/app_driver.py``); the library
never starts the dashboard. Plain functions, no pytest:

* :func:`free_port`: a free TCP port on 127.0.0.1;
* :func:`start_server`: the server as a child process, its output in a log file;
* :func:`wait_healthy`: poll ``/_stcore/health`` until it answers 200 (:class:`ServerError` otherwise);
* :func:`stop_process`: SIGTERM, then SIGKILL after 15 s (the server, or any child process; or its whole group).

Import it as ``benchmarks.streamlit_server`` with the repository root on
``sys.path`` (tests), or as ``streamlit_server`` from a script in this folder.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["REPO", "ENTRY", "ServerError", "free_port", "server_command", "start_server", "wait_healthy", "stop_process"]

#: The checkout's root (where ``streamlit_app.py`` lives).
REPO = Path(__file__).resolve().parents[1]
#: The dashboard's entry script.
ENTRY = REPO / "streamlit_app.py"


class ServerError(RuntimeError):
    """The server exited or did not become healthy in time; the message ends with its log's tail."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (free when asked: another process may take it before the server does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, loopback only, no usage statistics, no source watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]


def start_server(env: dict[str, str], port: int, log: Path, *, new_session: bool = False) -> subprocess.Popen:
    """Start the dashboard's server on ``port`` (run from the checkout's root); stdout and stderr go to ``log``.

    ``new_session``: start it in a process group of its own (so that
    :func:`stop_process` with ``group=True`` also stops the job workers it spawns).
    """
    with open(log, "wb") as out:
        return subprocess.Popen(server_command(port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=new_session)


def _log_tail(log: Path, chars: int) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float, log: Path, *, poll_s: float = 0.5,
                 tail_chars: int = 3000) -> float:
    """Poll ``<url>/_stcore/health`` until it answers 200; returns the seconds waited.

    Raises :class:`ServerError` (with the log's last ``tail_chars`` characters)
    when the server exits first or is not healthy after ``timeout_s`` seconds.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerError(f"streamlit exited with {proc.returncode}:\n{_log_tail(log, tail_chars)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"streamlit not healthy after {timeout_s:.0f} s:\n{_log_tail(log, tail_chars)}")
        time.sleep(poll_s)


def _send(proc: subprocess.Popen, sig: signal.Signals, group: bool) -> bool:
    """Send ``sig`` to ``proc`` (its process group when ``group``); False when it has already gone."""
    try:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        return False
    return True


def stop_process(proc: subprocess.Popen | None, name: str = "streamlit", *, group: bool = False) -> None:
    """Stop ``proc`` (its process group when ``group``): SIGTERM, then SIGKILL after 15 s. Nothing when it has ended."""
    if proc is None or proc.poll() is not None:
        return
    if not _send(proc, signal.SIGTERM, group):
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop on SIGTERM; killing it", file=sys.stderr)
        _send(proc, signal.SIGKILL, group)
        proc.wait(timeout=15)
