"""How long one training takes in-process (cross_validate, as the old thread jobs ran it) against
as a job in a spawned worker process (submit -> done seen in the store): the worker's overhead.

    NESTEDAE_DATA_DIR=... python benchmarks/job_overhead.py [--epochs 300] [--folds 5] [--repeats 3]

Prints one line per run and the medians (s). The worker time includes starting the process,
importing torch and nestedae_core in it, regenerating the synthetic tables and writing the
staged bundle; the in-process time is the training alone (nothing to start or write).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from nestedae_core.jobs import JobManager, load_settings, synthetic_tables, train_payload
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.train import cross_validate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    spec = preset("synthetic", epochs=args.epochs, folds=args.folds)
    inproc, worker, inside = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        m = JobManager(Path(tmp) / "jobs.sqlite", settings=load_settings({}, max_jobs_per_owner=100), models_dir=Path(tmp) / "models")
        try:
            for i in range(args.repeats):
                t = time.perf_counter()
                cross_validate(spec, device="cpu", threads=1)
                inproc.append(time.perf_counter() - t)
                t = time.perf_counter()
                job = m.submit("train", train_payload(spec, device="cpu", tables=synthetic_tables()), owner="bench", name=f"b{i}")
                rec = m.wait(job, 3600, poll_s=0.05)
                worker.append(time.perf_counter() - t)
                inside.append(rec.elapsed_s)
                assert rec.status == "done", rec.error
                print(f"run {i + 1}: in-process {inproc[-1]:.2f} s; worker process {worker[-1]:.2f} s "
                      f"(of which running in the worker {inside[-1]:.2f} s)", flush=True)
        finally:
            m.shutdown()
    med = statistics.median
    print(f"synthetic preset, {args.epochs} epochs per stage, {args.folds} folds, {args.repeats} repeats (medians): "
          f"in-process {med(inproc):.2f} s, worker process {med(worker):.2f} s, overhead {med(worker) - med(inproc):.2f} s "
          f"(start-up and import before the job runs: {med(w - x for w, x in zip(worker, inside)):.2f} s)")


if __name__ == "__main__":
    main()
