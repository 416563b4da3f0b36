"""A stand-in job server for the fault tests (tests/test_hosting_faults.py), run as a separate process.

    python tests/hosting_server.py DB MODELS train        # submit a long training job, print its id, serve until killed
    python tests/hosting_server.py DB MODELS save JOB     # save JOB as 'half'; the save stalls (slow disk) until killed

Like the dashboard's server, SIGTERM ends it through a normal interpreter exit
(its worker processes are terminated and stop gracefully); SIGKILL ends it at once.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    from nestedae_core.jobs import JobManager, load_settings, synthetic_tables, train_payload
    from nestedae_core.perovskite.presets import preset

    db, models, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    manager = JobManager(db, settings=load_settings({}, max_epoch_folds=10**7), models_dir=models)
    if mode == "train":
        payload = train_payload(preset("synthetic", epochs=50_000, folds=2), device="cpu",
                                tables=synthetic_tables(n_materials=60, n_devices=120))
        print(manager.submit("train", payload, owner="alice", name="long"), flush=True)
    elif mode == "save":
        real_fsync = os.fsync
        stalled = Path(db).with_name("save-stalled")

        def slow_fsync(fd: int) -> None:  # the bundle's files are written; the rename is still to come
            real_fsync(fd)
            stalled.touch()
            time.sleep(600)

        os.fsync = slow_fsync
        manager.save(sys.argv[4], "half", owner="alice")
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
