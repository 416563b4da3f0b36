#!/usr/bin/env bash
# 5-fold training time of today's default chain against an older commit's paper chain, measured
# side by side on this machine (alternating runs), plus 1000 compositions through the default chain.
# Usage: bash benchmarks/side_by_side_training.sh [BASE_COMMIT (default ead481e)] [REPEATS (default 2)]
# Needs the datasets (NESTEDAE_DATA_DIR). Prints seconds; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BASE="${1:-ead481e}"
REPEATS="${2:-2}"
WT="$(mktemp -d)/base"
git worktree add --detach "$WT" "$BASE" >/dev/null
trap 'git worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
# the old layout had nestedae_core.presets; the new one nestedae_core.model.presets
OLD='import time; from nestedae_core.presets import preset; from nestedae_core.train import cross_validate
t = time.perf_counter(); r = cross_validate(preset("paper"), device="cpu")
print("BASE paper chain: %.1f s" % (time.perf_counter() - t), {k: round(v, 1) for k, v in r.seconds.items()})'
NEW='import time; from nestedae_core.model.presets import preset; from nestedae_core.train import cross_validate
t = time.perf_counter(); r = cross_validate(preset("measured"), device="cpu")
print("HEAD measured chain: %.1f s" % (time.perf_counter() - t), {k: round(v, 1) for k, v in r.seconds.items()})'
for _ in $(seq "$REPEATS"); do
  (cd /tmp && PYTHONPATH="$WT" python -c "$OLD")
  (cd /tmp && PYTHONPATH="$ROOT" python -c "$NEW")
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
