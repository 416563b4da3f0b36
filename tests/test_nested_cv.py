"""Nested CV of the film stage's setting (benchmark accuracy --nested): the inner selection never sees an outer-test
row, the chosen setting is the inner winner and is reported, and the option runs end to end through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nestedae_core.benchmark import nested as nested_module
from nestedae_core.benchmark.nested import INNER_FOLDS, film_setting_spec, nested_film_cv, nested_plan
from nestedae_core.benchmark.stage_tables import stage_table
from nestedae_core.errors import ConfigError
from nestedae_core.model.config import ChainSpec
from nestedae_core.perovskite.presets import preset
from nestedae_core.perovskite.splits import canonical_keys, chain_folds
from nestedae_core.vocabulary import SITE_FRACTION_COLUMNS

pytestmark = pytest.mark.unit


def _compositions(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` MA/FA/Cs lead iodide-bromides (site fractions), some of them near-duplicates of each other."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a = rng.dirichlet([1, 1, 1]).round(2)
        a[0] = 1 - a[1] - a[2]
        br = float(rng.choice([0.0, 0.1, 0.17, 0.5, 1.0]))
        row = {c: 0.0 for c in SITE_FRACTION_COLUMNS}
        row.update({"MA": a[0], "FA": a[1], "Cs": a[2], "Pb": 1.0, "Br": br, "I": 1 - br})
        rows.append(row)
    return pd.DataFrame(rows)


def test_inner_folds_use_outer_training_rows_only_and_keep_clusters_together() -> None:
    table = _compositions(60)
    outer = np.arange(60) % 4
    plan = nested_plan(table, outer, inner=3, seed=0)
    per = 3 + 1
    assert plan.rows.shape == (4 * per, 60)
    keys = canonical_keys(table)
    for m in range(4):
        test = np.flatnonzero(outer == m)
        train = np.flatnonzero(outer != m)
        assert (plan.inner_folds[m, test] == -1).all() and (plan.inner_folds[m, train] >= 0).all()
        for j in range(per):
            fit = np.flatnonzero(plan.rows[m * per + j])
            assert not set(fit) & set(test), (m, j)  # no fit of outer fold m ever trains on its outer-test rows
            if j < 3:  # an inner fit leaves out exactly its inner fold
                assert set(fit) == set(train[plan.inner_folds[m, train] != j])
            else:  # the refit: every outer-training row
                assert set(fit) == set(train)
        # the inner split is a cluster split keyed on the canonical composition: one composition, one inner fold
        ids = pd.Series(plan.inner_folds[m, train]).groupby(keys[train]).nunique()
        assert ids.max() == 1


def test_plan_refuses_bad_folds() -> None:
    table = _compositions(20)
    with pytest.raises(ConfigError, match="one per row"):
        nested_plan(table, np.zeros(5, dtype=int))
    with pytest.raises(ConfigError, match="at least 2 inner folds"):
        nested_plan(table, np.arange(20) % 2, inner=1)


def test_setting_spec_changes_only_the_film_stage() -> None:
    spec = preset("measured")
    s = film_setting_spec(spec, "film", {"l2": 0.1, "bound": 0.25})
    assert s.stages[1].l2 == 0.1 and s.stages[1].residual[0].bound == 0.25
    assert s.stages[0] == spec.stages[0] and s.stages[2] == spec.stages[2]
    with pytest.raises(ConfigError, match="no residual target"):
        film_setting_spec(spec, "dft", {"l2": 0.1, "bound": 0.25})


def _measured_two_stages(epochs: int) -> ChainSpec:
    spec = preset("measured", epochs=epochs, folds=3, seed=0)
    return ChainSpec.model_validate({**spec.model_dump(), "stages": spec.model_dump()["stages"][:2]})


def test_nested_cv_selects_on_inner_folds_and_reports_the_choice(data_dir, monkeypatch) -> None:
    spec = _measured_two_stages(3)
    outer = chain_folds(spec, [stage_table(spec, i, None) for i in range(2)], "family")["film"]
    seen: list[np.ndarray] = []
    real = nested_module.train_stage

    def spy(model, i, raw, member_rows, **kw):  # type: ignore[no-untyped-def]
        trained = real(model, i, raw, member_rows, **kw)
        seen.append(trained.member_rows.copy())
        return trained

    monkeypatch.setattr(nested_module, "train_stage", spy)
    grid = {"l2": (1e-3, 1e-1), "bound": (0.5,)}
    out = nested_film_cv(spec, outer, grid=grid, device="cpu")
    per = INNER_FOLDS + 1
    assert len(seen) == 2  # one batched fit per setting; the DFT stage is not retrained per setting
    for rows in seen:
        assert rows.shape == (3 * per, len(outer))
        for member in range(3 * per):
            assert not rows[member, outer == member // per].any()  # never an outer-test row
    assert out["grid"] == [{"l2": 1e-3, "bound": 0.5}, {"l2": 1e-1, "bound": 0.5}]
    assert [s["fold"] for s in out["selection"]] == [0, 1, 2]
    for sel in out["selection"]:
        assert sel["setting"] == out["grid"][int(np.argmin(sel["inner_mae"]))]  # the inner winner, not the outer one
        assert np.isfinite(sel["outer_mae"]) and sel["outer_mae"] > 0
    assert len(out["oof_pred"]) == len(outer) and np.isfinite(out["oof_pred"]).all()
    assert out["mae"] > 0 and len(out["folds"]) == 3 and out["inner_split"] == "cluster"


def test_cli_nested_runs_end_to_end(data_dir, tmp_path, capsys) -> None:
    from nestedae_core.cli import main

    path = tmp_path / "nested.json"
    code = main(["benchmark", "accuracy", "--task", "bandgap-measured", "--split", "family", "--folds", "3", "--epochs", "3",
                 "--model", "nestedae", "--model", "mean", "--nested", "--nested-l2", "1e-3", "1e-1", "--nested-bound", "0.5",
                 "--jobs", "1", "--device", "cpu", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    report = json.loads(path.read_text())
    entry = report["tasks"]["bandgap-measured"]
    assert set(entry["models"]) == {"nestedae", "mean", "nestedae-nested"}
    nested = entry["models"]["nestedae-nested"]
    assert [s["families"] for s in nested["selection"]] == entry["fold_families"]
    assert [f["n"] for f in nested["folds"]] == [f["n"] for f in entry["models"]["mean"]["folds"]]  # the same outer folds
    assert "nestedae-nested" in report["tuning"]
    assert "nestedae-nested: film setting chosen per outer fold" in out
    first = nested["selection"][0]["setting"]
    assert f"fold 1 ({', '.join(entry['fold_families'][0])}): l2 {first['l2']:g}, bound {first['bound']:g} eV" in out
    assert "NestedAE (nested) vs mean on the same folds" in out and "NestedAE vs mean on the same folds" in out


def test_a_variant_of_nestedae_is_never_the_best_baseline() -> None:
    from nestedae_core.benchmark import best_baseline

    models = {"nestedae": {"mae": 0.2}, "nestedae-nested": {"mae": 0.1}, "lightgbm": {"mae": 0.15}, "mean": {"mae": 0.3}}
    assert best_baseline(models) == "lightgbm"
    del models["lightgbm"]
    assert best_baseline(models) == "mean"


def test_cli_refuses_a_bad_grid_value(capsys) -> None:
    from nestedae_core.cli import main

    with pytest.raises(SystemExit):
        main(["benchmark", "accuracy", "--nested", "--nested-bound", "0"])
    assert "invalid bound (eV) 0" in capsys.readouterr().err
