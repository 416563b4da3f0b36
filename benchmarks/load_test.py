"""Load test of a hosted dashboard: browsing sessions while jobs train (loopback only, bounded).

Starts ``streamlit run streamlit_app.py`` on a free loopback port with a
temporary models folder and job store, opens ``--sessions`` browser sessions
(contexts of one headless Chromium, driven concurrently with Playwright's async
API) that visit the dashboard's pages in turn, and measures each page's settle
time (click in the menu -> the script run is over: Streamlit's "running" status
widget is gone and no element is marked stale). Each session first visits every page once, unmeasured (the
server's and the session's first run of a page imports and caches); then two
phases of ``--duration / 2`` seconds each:

1. **quiet**: browsing only;
2. **training**: browsing while 2 training jobs and 1 sweep of 4 trials run,
   submitted through the library's job API against the server's job store (a
   separate process: the same thing the Train and Sweep pages do).

Counts errors (a Streamlit exception box, a redacted "An error has occurred"
message, a page that does not settle within ``--page-timeout``), and prints the
median and 90th percentile of page-settle times per phase and the server's
resident memory (its own and with its child processes; psutil, else /proc).
Everything it starts (server, job submitter, browser) is stopped on exit, also
on Ctrl-C or an error. Exit code 0 when no error was counted, else 1.

    python benchmarks/load_test.py [--duration 120] [--sessions 8] [--json FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from streamlit_server import REPO, free_port, start_server, stop_process, wait_healthy  # this folder's server helper
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
#: Pages the browsing sessions visit, in turn (each session starts at a different one).
PAGES = ["Compose", "Predict", "Data", "Screen", "Compare", "Latents", "Learn", "Explain", "Train", "Sweep", "Home"]

# Job submitter: a separate process that submits 2 training jobs and a 4-trial sweep
# through the library API against the server's job store, and waits for them.
SUBMITTER = textwrap.dedent(
    """
    import json, sys, time
    import optuna
    from nestedae_core.jobs import JobManager, train_payload
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.sweep import Sweep, SweepConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs, timeout = int(sys.argv[1]), float(sys.argv[2])
    t0 = time.monotonic()
    manager = JobManager()
    jobs = [manager.submit("train", train_payload(preset("measured", epochs=epochs or None, seed=i), device="cpu"), owner="load-train", name=f"load-train-{i}")
            for i in range(2)]
    sweep = Sweep.create(SweepConfig(preset="synthetic", n_trials=4, epochs=epochs or None, folds=5, parallel=2), manager, owner="load-sweep", study_name=f"load-{int(time.time())}")
    done_at = {}
    while time.monotonic() - t0 < timeout:
        over = sweep.step()
        for j in jobs:
            rec = manager.get(j)
            if rec.status not in ("queued", "running") and j not in done_at:
                done_at[j] = round(time.monotonic() - t0, 1)
        if over and len(done_at) == len(jobs):
            break
        time.sleep(0.5)
    out = {"train": [{"status": manager.get(j).status, "finished_after_s": done_at.get(j)} for j in jobs],
           "sweep": {"state": sweep.state(), **sweep.counts(), "best": (sweep.best() or {}).get("value")},
           "elapsed_s": round(time.monotonic() - t0, 1)}
    print(json.dumps(out), flush=True)
    manager.shutdown()
    """
)


def rss_bytes(pid: int, children: bool) -> int:
    """Resident memory of ``pid`` (and of its descendants when ``children``), in bytes."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc] + (proc.children(recursive=True) if children else [])
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total
    except ImportError:
        pids = [pid]
        if children:
            try:
                out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False).stdout
                pids += [int(x) for x in out.split()]
            except OSError:
                pass
        total = 0
        for p in pids:
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total


def job_summary(db: Path, log: Path) -> dict[str, object]:
    """What became of the jobs: the submitter's last JSON line, else the job store's counts per kind and status."""
    lines = [ln for ln in (log.read_text(errors="replace").splitlines() if log.exists() else []) if ln.startswith("{")]
    if lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    out: dict[str, object] = {}
    if db.exists():
        from nestedae_core.jobs import JobStore

        for rec in JobStore(db).list():
            key = f"{rec.kind}:{rec.status}"
            out[key] = int(out.get(key, 0)) + 1  # type: ignore[arg-type]
    return out


class Stats:
    """Page-settle times and errors per phase."""

    def __init__(self) -> None:
        self.phase = "warm-up"
        self.stop = False
        self.warm = 0
        self.times: dict[str, list[float]] = {"warm-up": [], "quiet": [], "training": []}
        self.errors: list[str] = []
        self.worst: tuple[float, str] = (0.0, "")


async def _busy(page) -> bool:  # type: ignore[no-untyped-def]
    """True while a script run is going on: the status widget shows, or elements are marked stale."""
    return bool(await page.locator("[data-testid='stStatusWidget']").count() or await page.locator("[data-stale='true']").count())


async def settle(page, timeout_s: float, t0: float | None = None) -> float:  # type: ignore[no-untyped-def]
    """Seconds from ``t0`` (default now) until the script run is over (not busy twice, 0.1 s apart)."""
    t0 = time.monotonic() if t0 is None else t0
    await asyncio.sleep(0.2)
    while time.monotonic() - t0 < timeout_s:
        if not await _busy(page):
            await asyncio.sleep(0.1)
            if not await _busy(page):
                return time.monotonic() - t0
        await asyncio.sleep(0.1)
    raise TimeoutError(f"page did not settle within {timeout_s:.0f} s")


async def error_on_page(page) -> str | None:  # type: ignore[no-untyped-def]
    if await page.locator("[data-testid='stException']").count():
        return "exception box"
    if await page.get_by_text("An error has occurred", exact=False).count():
        return "redacted error"
    return None


async def browse(browser, url: str, index: int, stats: Stats, page_timeout: float) -> None:  # type: ignore[no-untyped-def]
    """One session: visit the pages in turn until ``stats.stop``; its first round (every page once) is its warm-up."""
    import re

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(page_timeout * 1000)
    try:
        await page.goto(url)
        await page.wait_for_selector("[data-testid='stApp']")
        await settle(page, page_timeout)
        i = index
        while not stats.stop:
            title = PAGES[i % len(PAGES)]
            i += 1
            phase = stats.phase
            try:
                t0 = time.monotonic()  # the settle time includes the click (a loaded browser is part of the experience)
                nav = page.get_by_test_id("stSidebarNav")
                await nav.get_by_role("link", name=re.compile(rf"^\W*{re.escape(title)}$")).first.click()
                seconds = await settle(page, page_timeout, t0)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, with its page
                stats.errors.append(f"session {index} {title} ({phase}): {type(exc).__name__}: {' '.join(str(exc).split())[:160]}")
                continue
            finally:
                if i - index == len(PAGES):
                    stats.warm += 1
            problem = await error_on_page(page)
            if problem:
                stats.errors.append(f"session {index} {title} ({phase}): {problem}")
            if phase == stats.phase:  # a visit that straddles a switch counts in neither phase
                stats.times[phase].append(seconds)
                if phase != "warm-up" and seconds > stats.worst[0]:
                    stats.worst = (seconds, f"{title} ({phase})")
    finally:
        await context.close()


async def drive(url: str, args: argparse.Namespace, stats: Stats, on_switch, sample) -> None:  # type: ignore[no-untyped-def]
    """Warm-up (each session visits every page once, unmeasured), then the quiet half, then the training half."""
    from playwright.async_api import async_playwright

    half = args.duration / 2
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            async def conductor() -> None:
                w0 = time.monotonic()
                while stats.warm < args.sessions and time.monotonic() - w0 < args.warmup_limit:
                    sample()
                    await asyncio.sleep(0.5)
                print(f"[{time.strftime('%H:%M:%S')}] warm-up: {stats.warm} of {args.sessions} sessions visited every page once "
                      f"in {time.monotonic() - w0:.1f} s; quiet phase", file=sys.stderr)
                stats.phase = "quiet"
                t0 = time.monotonic()
                while time.monotonic() - t0 < args.duration:
                    sample()
                    if stats.phase == "quiet" and time.monotonic() - t0 >= half:
                        on_switch()
                        stats.phase = "training"
                    await asyncio.sleep(1.0)
                stats.stop = True

            await asyncio.gather(conductor(), *(browse(browser, url, i, stats, args.page_timeout) for i in range(args.sessions)))
        finally:
            await browser.close()


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median_s": None, "p90_s": None}
    q = statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
    return {"n": len(values), "median_s": round(statistics.median(values), 2), "p90_s": round(q, 2), "max_s": round(max(values), 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of browsing in all, half quiet and half with jobs (default 120, at most 900)")
    ap.add_argument("--sessions", type=int, default=8, help="browsing sessions (default 8, at most 16)")
    ap.add_argument("--epochs", type=int, default=0, help="epochs per stage of the training jobs and the sweep's base (default 0: the presets' own)")
    ap.add_argument("--max-running", type=int, default=2, help="jobs training at once (NESTEDAE_MAX_RUNNING; default 2)")
    ap.add_argument("--warmup-limit", type=float, default=240.0, help="seconds the sessions' unmeasured first round may take at most (default 240)")
    ap.add_argument("--page-timeout", type=float, default=90.0, help="seconds a page may take to settle before it counts as an error")
    ap.add_argument("--data-dir", default=os.environ.get("NESTEDAE_DATA_DIR", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--json", help="write the figures as JSON to this file")
    args = ap.parse_args(argv)
    args.duration = max(10.0, min(float(args.duration), 900.0))
    args.sessions = max(1, min(int(args.sessions), 16))

    tmp = Path(tempfile.mkdtemp(prefix="nestedae-load-"))
    env = dict(os.environ)
    env.update({
        "NESTEDAE_DATA_DIR": args.data_dir,
        "NESTEDAE_MODELS_DIR": str(tmp / "models"),
        "NESTEDAE_JOB_STORE": str(tmp / "jobs.sqlite"),
        "NESTEDAE_CACHE_DIR": str(tmp / "cache"),
        "PYTHONUNBUFFERED": "1",
        "NESTEDAE_MAX_RUNNING": str(max(1, int(args.max_running))),
    })
    env.pop("NESTEDAE_DASK_SCHEDULER", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "streamlit.log"
    server = submitter = None
    stats = Stats()
    rss = {"server_max": 0, "with_children_max": 0}
    submit_log = tmp / "jobs.log"

    def sample() -> None:
        if server is not None and server.poll() is None:
            rss["server_max"] = max(rss["server_max"], rss_bytes(server.pid, False))
            rss["with_children_max"] = max(rss["with_children_max"], rss_bytes(server.pid, True))

    def start_jobs() -> None:
        nonlocal submitter
        print(f"[{time.strftime('%H:%M:%S')}] training phase: 2 training jobs + a 4-trial sweep", file=sys.stderr)
        with open(submit_log, "wb") as out:
            submitter = subprocess.Popen(
                [sys.executable, "-c", SUBMITTER, str(max(0, int(args.epochs))), str(args.duration / 2)],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    try:
        t_start = time.monotonic()
        server = start_server(env, port, log, new_session=True)
        wait_healthy(url, server, 120.0, log, tail_chars=2000)
        print(f"[{time.strftime('%H:%M:%S')}] server up at {url} in {time.monotonic() - t_start:.1f} s; {args.sessions} sessions, {args.duration:.0f} s", file=sys.stderr)
        rss["server_start"] = rss_bytes(server.pid, False)
        asyncio.run(drive(url, args, stats, start_jobs, sample))
        sample()
        rss["server_end"] = rss_bytes(server.pid, False)
        if submitter is not None:
            try:
                submitter.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
    finally:
        stop_process(submitter, "job submitter", group=True)
        stop_process(server, "streamlit", group=True)
    jobs_out = job_summary(tmp / "jobs.sqlite", submit_log)
    quiet, busy = summary(stats.times["quiet"]), summary(stats.times["training"])
    ratio = round(busy["p90_s"] / quiet["p90_s"], 2) if quiet["p90_s"] and busy["p90_s"] else None
    mib = {k: round(v / 2**20) for k, v in rss.items()}
    report = {
        "sessions": args.sessions, "duration_s": args.duration, "epochs": args.epochs,
        "quiet": quiet, "training": busy, "p90_ratio": ratio,
        "worst_page": {"seconds": round(stats.worst[0], 2), "page": stats.worst[1]},
        "errors": len(stats.errors), "error_list": stats.errors[:20],
        "server_rss_mib": mib, "jobs": jobs_out, "logs": str(tmp),
    }
    print(f"page settle, quiet:    n={quiet['n']}, median {quiet['median_s']} s, p90 {quiet['p90_s']} s")
    print(f"page settle, training: n={busy['n']}, median {busy['median_s']} s, p90 {busy['p90_s']} s (p90 ratio {ratio})")
    print(f"worst page: {report['worst_page']['seconds']} s ({report['worst_page']['page']})")
    print(f"server RSS: start {mib.get('server_start')} MiB, max {mib['server_max']} MiB, with child processes max {mib['with_children_max']} MiB")
    print(f"errors: {len(stats.errors)}" + "".join(f"\n  {e}" for e in stats.errors[:20]))
    print(f"jobs (measured chain x 2, synthetic sweep of 4 trials): {jobs_out}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if not stats.errors else 1


if __name__ == "__main__":
    sys.exit(main())
