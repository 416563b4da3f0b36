"""Milliseconds per epoch of each stage of a preset's 5-fold cross-validation, and its wall time and MAEs.

Usage: python benchmarks/stage_times.py PRESET [nodrop]
  nodrop: every stage with head_dropout=0 (what the heads' dropout costs)
Needs the datasets (NESTEDAE_DATA_DIR). Prints figures; asserts nothing.
"""
import sys
import time

import nestedae_core.train.stages as stages
from nestedae_core.perovskite.presets import preset
from nestedae_core.train import cross_validate

orig = stages.fit_stage


def timed(net, spec, d, tm, vm, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    e = orig(net, spec, d, tm, vm, **kw)
    dt = time.perf_counter() - t
    print(f"  {spec.name}: members {tm.shape[0]} rows {tm.shape[1]} distinct inputs {d.x.shape[1]} width {d.x.shape[2]} "
          f"{dt:.2f} s {1000 * dt / e:.2f} ms/epoch", flush=True)
    return e


stages.fit_stage = timed
spec = preset(sys.argv[1])
if len(sys.argv) > 2 and sys.argv[2] == "nodrop":
    spec = spec.model_copy(update={"stages": [s.model_copy(update={"head_dropout": 0.0}) for s in spec.stages]})
t = time.perf_counter()
r = cross_validate(spec, device="cpu")
print(" ".join(sys.argv[1:]), f"{time.perf_counter() - t:.2f} s")
print({s: {k: round(v["mae"], 4) for k, v in m.items()} for s, m in r.metrics.items()})
