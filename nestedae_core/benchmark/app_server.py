"""Start and stop the dashboard's server as a child process: ``streamlit run <entry>`` on a free loopback port.

Used by :mod:`.dashboard` (``nestedae benchmark speed --dashboard``) and, through
``benchmarks/streamlit_server.py``, by the checkout's benchmarks and tests. The
library never imports Streamlit: the server is a separate process.

* :func:`find_app`: the dashboard's entry script (``streamlit_app.py``) of a checkout;
* :func:`free_port`: a free TCP port on 127.0.0.1;
* :func:`server_command`: the ``streamlit run`` command line;
* :func:`start_server`: the server as a child process, its output in a log file;
* :func:`wait_healthy`: poll ``/_stcore/health`` until it answers 200 (:class:`ServerError` otherwise);
* :func:`stop_process`: SIGTERM, then SIGKILL after 15 s (the server, or its whole process group).
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["APP_ENTRY", "ServerError", "find_app", "free_port", "server_command", "start_server", "wait_healthy", "stop_process"]

logger = logging.getLogger(__name__)

#: The file name of the dashboard's entry script, at the root of a checkout.
APP_ENTRY = "streamlit_app.py"


class ServerError(RuntimeError):
    """The server exited or did not become healthy in time; the message ends with its log's tail."""


def find_app(app: str | os.PathLike[str] | None = None) -> Path | None:
    """The dashboard's entry script: ``app`` (a file, or a folder holding ``streamlit_app.py``) when given,
    else ``./streamlit_app.py``, else the one beside this package (a checkout or an editable install).

    Returns ``None`` when none is found (an installed package ships no dashboard).
    """
    if app is not None:
        path = Path(app).expanduser()
        path = path / APP_ENTRY if path.is_dir() else path
        return path.resolve() if path.is_file() else None
    for folder in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (folder / APP_ENTRY).is_file() and (folder / "pages").is_dir():
            return (folder / APP_ENTRY).resolve()
    return None


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (free when asked: another process may take it before the server does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(port: int, entry: str = APP_ENTRY) -> list[str]:
    """The ``streamlit run`` command line: headless, loopback only, no usage statistics, no source watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", entry,
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]


def start_server(env: dict[str, str], port: int, log: Path, *, entry: Path, new_session: bool = False) -> subprocess.Popen:
    """Start the dashboard's server on ``port``, run from the folder of ``entry``; stdout and stderr go to ``log``.

    ``new_session``: start it in a process group of its own (so that
    :func:`stop_process` with ``group=True`` also stops the job workers it spawns).
    """
    with open(log, "wb") as out:
        return subprocess.Popen(server_command(port, entry.name), cwd=entry.parent, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=new_session)


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
        logger.warning("%s did not stop on SIGTERM; killing it", name)
        _send(proc, signal.SIGKILL, group)
        proc.wait(timeout=15)
