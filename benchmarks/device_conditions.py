"""Do the recipe's other recorded conditions help predict PCE on recipe-grouped folds?

Issue "Science a chemist can push", item 5: add the substrate and the test atmosphere as device inputs
*where the grouped split says they help*. This probe answers that question cheaply, with a model that
uses categorical inputs natively (scikit-learn's histogram gradient boosting) on the paper's 15 site
descriptors + ETL + HTL, with and without the extra columns, on the same recipe-grouped folds
(composition + ETL + HTL; 5 folds x 3 seeds). Of the recipe columns in ``psc-devices``, only the substrate
(20 values) and the test atmosphere (4 values) vary; every other one (deposition procedure, steps,
quenching, light intensity, spectrum, dimension, ...) has a single value in all 2018 devices.

    python benchmarks/device_conditions.py [--seeds 3] [--folds 5]

Prints the mean PCE MAE (%) per input set. Result on this project's 2-core machine (2026-12-06):
none of them differs from the base set by more than the fold noise, so the device stage does not take them.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from nestedae_core.data.loading import load
from nestedae_core.errors import DataMissingError
from nestedae_core.vocabulary import ETL, HTL, PAPER_DESCRIPTORS, PCE, SUBSTRATE

ATMOSPHERE = "JV_test_atmosphere"


def _design(table: pd.DataFrame, extra: list[str]) -> tuple[np.ndarray, list[int]]:
    cats = [ETL, HTL, *extra]
    frame = pd.concat([table[list(PAPER_DESCRIPTORS)].astype(float)]
                      + [table[c].astype("category").cat.codes.rename(c) for c in cats], axis=1)
    return frame.to_numpy(), [frame.columns.get_loc(c) for c in cats]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    try:
        table = load("psc-devices", download=False)
    except DataMissingError as exc:
        raise SystemExit(f"{exc} (set NESTEDAE_DATA_DIR or run `nestedae data fetch`)") from None
    y = table[PCE].astype(float).to_numpy()
    recipe = table["Perovskite_composition_long_form"].astype(str) + "|" + table[ETL].astype(str) + "|" + table[HTL].astype(str)
    print(f"PCE MAE (%), {args.folds} recipe-grouped folds x {args.seeds} seeds, histogram gradient boosting")
    for extra in ([], [SUBSTRATE], [ATMOSPHERE], [SUBSTRATE, ATMOSPHERE]):
        x, cat = _design(table, extra)
        maes = []
        for seed in range(args.seeds):
            groups = recipe.unique()
            fold_of = dict(zip(groups, np.random.default_rng(seed).permutation(len(groups)) % args.folds))
            fold = recipe.map(fold_of).to_numpy()
            for k in range(args.folds):
                train, test = fold != k, fold == k
                model = HistGradientBoostingRegressor(categorical_features=cat, max_iter=300, learning_rate=0.05, random_state=0)
                model.fit(x[train], y[train])
                maes.append(float(np.abs(model.predict(x[test]) - y[test]).mean()))
        print(f"  {' + '.join(['descriptors + ETL + HTL', *extra]):<70} {np.mean(maes):.3f} ± {np.std(maes):.3f}")


if __name__ == "__main__":
    main()
