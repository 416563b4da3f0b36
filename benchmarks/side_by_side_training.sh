#!/usr/bin/env bash
# 5-fold training of the paper chain at older commits and now, and of today's default (measured) chain,
# measured side by side on this machine (alternating runs: wall and CPU seconds, MAEs), then cold
# `nestedae predict` / `explain` against `import torch` (fresh processes, alternating), and 1000
# compositions through the default chain.
# Usage: bash benchmarks/side_by_side_training.sh [BASE_COMMITS (comma-separated, default ead481e)] [REPEATS (default 2)]
#   SPLIT=grouped  cross-validate on grouped folds (default: each preset's own split, random for paper)
#   COLD=0         skip the cold-command and prediction timings (training only)
#   BASE_PRESETS=paper,measured  presets also timed at the base commits, each compared with HEAD's same preset
#                  (default paper; e.g. `BASE_PRESETS=paper,measured bash ... ead481e,main 2`)
# Needs the datasets (NESTEDAE_DATA_DIR). Prints seconds and ratios; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BASES="${1:-ead481e}"
REPEATS="${2:-2}"
SPLIT="${SPLIT:-}"
COLD="${COLD:-1}"
BASE_PRESETS="${BASE_PRESETS:-paper}"
IFS=',' read -r -a PRESET_LIST <<< "$BASE_PRESETS"
IFS=',' read -r -a BASE_LIST <<< "$BASES"
BASE="${BASE_LIST[0]}"
TMP="$(mktemp -d)"
declare -A WTS
for b in "${BASE_LIST[@]}"; do
  WTS[$b]="$TMP/base-$b"
  git worktree add --detach "${WTS[$b]}" "$b" >/dev/null
done
WT="${WTS[$BASE]}"
cleanup() { for b in "${BASE_LIST[@]}"; do git worktree remove --force "${WTS[$b]}" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
# one training run: presets moved over time (nestedae_core.presets, .model.presets, .perovskite.presets)
TRAIN='import sys, time
try:
    from nestedae_core.perovskite.presets import preset
except ImportError:
    try:
        from nestedae_core.model.presets import preset
    except ImportError:
        from nestedae_core.presets import preset
from nestedae_core.train import cross_validate
who, name, split = sys.argv[1], sys.argv[2], sys.argv[3] or None
t, c = time.perf_counter(), time.process_time()
r = cross_validate(preset(name, split=split), device="cpu")
wall, cpu = time.perf_counter() - t, time.process_time() - c
maes = ", ".join("%s/%s %.4f" % (s, k, v["mae"]) for s, m in r.metrics.items() for k, v in m.items())
label = split or "preset split"
print(f"{who} {name} chain ({label}): {wall:.1f} s wall, {cpu:.1f} s CPU ({maes})")
print(f"RESULT {who}-{name} {wall:.3f} {cpu:.3f}")'
LOG="$(mktemp)"
uptime
for _ in $(seq "$REPEATS"); do
  for b in "${BASE_LIST[@]}"; do
    for p in "${PRESET_LIST[@]}"; do
      (cd /tmp && PYTHONPATH="${WTS[$b]}" python -c "$TRAIN" "$b" "$p" "$SPLIT") | tee -a "$LOG" | grep -v '^RESULT'
    done
  done
  (cd /tmp && PYTHONPATH="$ROOT" python -c "$TRAIN" HEAD paper "$SPLIT") | tee -a "$LOG" | grep -v '^RESULT'
  (cd /tmp && PYTHONPATH="$ROOT" python -c "$TRAIN" HEAD measured "$SPLIT") | tee -a "$LOG" | grep -v '^RESULT'
done
python - "$LOG" "$BASES" "$BASE_PRESETS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        _, key, wall, cpu = line.split()
        rows.setdefault(key, []).append((float(wall), float(cpu)))
for b in sys.argv[2].split(","):
    for p in sys.argv[3].split(","):
        base = rows[f"{b}-{p}"]
        # the paper chain at a base against every HEAD chain (as before); another preset against HEAD's same preset
        for key in (k for k in rows if k.startswith("HEAD") and (p == "paper" or k == f"HEAD-{p}")):
            w = statistics.median(x[0] / r[0] for x, r in zip(base, rows[key]))
            c = statistics.median(x[1] / r[1] for x, r in zip(base, rows[key]))
            print(f"{b} {p} chain / {key}: {w:.2f}x wall, {c:.2f}x CPU (median of {len(base)} alternating pairs)")
PY
[ "$COLD" = "0" ] && exit 0
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
