#!/usr/bin/env bash
# 5-fold training of the paper chain at an older commit and now, and of today's default (measured) chain,
# measured side by side on this machine (alternating runs: wall and CPU seconds, MAEs), then cold
# `nestedae predict` / `explain` against `import torch` (fresh processes, alternating), and 1000
# compositions through the default chain.
# Usage: bash benchmarks/side_by_side_training.sh [BASE_COMMIT (default ead481e)] [REPEATS (default 2)]
# Needs the datasets (NESTEDAE_DATA_DIR). Prints seconds and ratios; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BASE="${1:-ead481e}"
REPEATS="${2:-2}"
WT="$(mktemp -d)/base"
git worktree add --detach "$WT" "$BASE" >/dev/null
trap 'git worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
# one training run: the old layout had nestedae_core.presets, the new one nestedae_core.model.presets
TRAIN='import sys, time
try:
    from nestedae_core.model.presets import preset
except ImportError:
    from nestedae_core.presets import preset
from nestedae_core.train import cross_validate
who, name = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time()
r = cross_validate(preset(name), device="cpu")
wall, cpu = time.perf_counter() - t, time.process_time() - c
maes = ", ".join("%s/%s %.4f" % (s, k, v["mae"]) for s, m in r.metrics.items() for k, v in m.items())
print(f"{who} {name} chain: {wall:.1f} s wall, {cpu:.1f} s CPU ({maes})")
print(f"RESULT {who}-{name} {wall:.3f} {cpu:.3f}")'
LOG="$(mktemp)"
uptime
for _ in $(seq "$REPEATS"); do
  (cd /tmp && PYTHONPATH="$WT" python -c "$TRAIN" "$BASE" paper) | tee -a "$LOG" | grep -v '^RESULT'
  (cd /tmp && PYTHONPATH="$ROOT" python -c "$TRAIN" HEAD paper) | tee -a "$LOG" | grep -v '^RESULT'
  (cd /tmp && PYTHONPATH="$ROOT" python -c "$TRAIN" HEAD measured) | tee -a "$LOG" | grep -v '^RESULT'
done
python - "$LOG" "$BASE" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        _, key, wall, cpu = line.split()
        rows.setdefault(key, []).append((float(wall), float(cpu)))
base = rows[f"{sys.argv[2]}-paper"]
for key in (k for k in rows if not k.startswith(sys.argv[2])):
    w = statistics.median(b[0] / r[0] for b, r in zip(base, rows[key]))
    c = statistics.median(b[1] / r[1] for b, r in zip(base, rows[key]))
    print(f"{sys.argv[2]} paper chain / {key}: {w:.2f}x wall, {c:.2f}x CPU (median of {len(base)} alternating pairs)")
PY
CLI='import sys; from nestedae_core.cli import main; sys.exit(main(sys.argv[1:]))'
for _ in $(seq "$REPEATS"); do
  for what in "import torch" "predict HEAD" "predict $BASE" "explain HEAD"; do
    case "$what" in
      "import torch") cmd=(python -c "import torch");;
      "predict HEAD") cmd=(env PYTHONPATH="$ROOT" python -c "$CLI" predict MAPbI3);;
      "explain HEAD") cmd=(env PYTHONPATH="$ROOT" python -c "$CLI" explain MAPbI3);;
      *) cmd=(env PYTHONPATH="$WT" python -c "$CLI" predict MAPbI3);;
    esac
    t0=$(date +%s.%N); (cd /tmp && "${cmd[@]}" >/dev/null 2>&1); t1=$(date +%s.%N)
    printf 'cold %-18s %.2f s\n' "$what" "$(echo "$t1 - $t0" | bc)"
  done
done
(cd /tmp && PYTHONPATH="$ROOT" python - <<'PY'
import time
import pandas as pd
from nestedae_core.chemistry.composition import composition_grid
from nestedae_core.chemistry.features import featurize_fractions
from nestedae_core.store import load_default_bundle
from nestedae_core.vocabulary import IONS
model = load_default_bundle()
grid = composition_grid(["Cs", "FA", "MA"], ["Pb", "Sn"], ["I", "Br", "Cl"], 1 / 12)[:1000]
defaults = {c: d for p in model.prep for c, d in zip(p.categorical_columns, p.default_categories)}
for level in (None, 0.9):
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        frame = pd.concat([pd.DataFrame(grid, columns=list(IONS)), featurize_fractions(grid)], axis=1).assign(**defaults)
        model.predict(frame) if level is None else model.predict(frame, level=level)
        best = min(best, time.perf_counter() - t)
    print(f"1000 compositions through the default chain{' with 90 % intervals' if level else ''}: {best:.3f} s (best of 5)")
PY
)
