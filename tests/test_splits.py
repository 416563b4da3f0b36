"""Splits that mean what they say: families never on both sides, clusters respect their distance, one split shared by the stages."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nestedae_core.benchmark import accuracy_benchmark
from nestedae_core.benchmark import calibration as calibration_module
from nestedae_core.benchmark import calibration_benchmark
from nestedae_core.errors import ConfigError, DataError
from nestedae_core.perovskite.presets import preset
from nestedae_core.perovskite.splits import (
    FAMILIES,
    canonical_keys,
    chain_folds,
    cluster_groups,
    composition_folds,
    family_of,
    split_folds,
)
from nestedae_core.train import cross_validate
from nestedae_core.vocabulary import SITE_FRACTION_COLUMNS

pytestmark = pytest.mark.unit


def _row(**ions: float) -> dict[str, float]:
    return {c: float(ions.get(c, 0.0)) for c in SITE_FRACTION_COLUMNS}


def _table(seed: int = 0, n: int = 120) -> pd.DataFrame:
    """Random perovskite compositions spanning every family (fractions per site sum to 1)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a = rng.dirichlet([1, 1, 1]) * (rng.random(3) < 0.7)
        a = a / a.sum() if a.sum() > 0 else np.array([0.0, 1.0, 0.0])
        sn = float(rng.choice([0.0, 0.0, 0.0, 0.25, 0.5, 1.0]))
        br = float(rng.choice([0.0, 0.1, 0.2, 0.5, 0.7, 1.0]))
        cl = float(rng.choice([0.0, 0.0, 0.0, 0.0, 0.1]))
        rows.append(_row(Cs=a[0], MA=a[1], FA=a[2], Sn=sn, Pb=1 - sn, Cl=cl, Br=br * (1 - cl), I=(1 - br) * (1 - cl)))
    return pd.DataFrame(rows)


def test_a_family_never_sits_on_both_sides_of_a_fold() -> None:
    t = _table()
    fam = family_of(t)
    assert set(fam) <= {f.name for f in FAMILIES} and "" not in set(fam)
    assert (fam[t["Cl"].to_numpy() > 0] == "chlorides").all()  # the first matching family wins
    folds = split_folds(t, 5, "family")
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    for k in range(5):
        assert not set(fam[folds == k]) & set(fam[folds != k])


def test_too_few_families_for_the_folds_is_one_clear_message() -> None:
    t = pd.DataFrame([_row(MA=1, Pb=1, I=1), _row(FA=1, Pb=1, I=1), _row(MA=1, Pb=1, Br=1)])
    with pytest.raises(ConfigError, match="at least 3 ion families"):
        split_folds(t, 3, "family")


def test_cluster_groups_respect_the_distance() -> None:
    t = _table(1)
    X = t.to_numpy()
    for metric, dist in (("chebyshev", lambda a, b: np.abs(a - b).max()), ("l1", lambda a, b: np.abs(a - b).sum())):
        g = cluster_groups(t, 0.05, metric)
        d = np.array([[dist(a, b) for b in X] for a in X])
        close = d <= 0.05
        assert (g[:, None] == g[None, :])[close].all()  # within the distance: one cluster
        # across clusters, no two rows are within the distance (connected components)
        assert (d[g[:, None] != g[None, :]] > 0.05).all()
    near = pd.DataFrame([_row(MA=1, Pb=1, I=1), _row(MA=0.97, FA=0.03, Pb=1, I=1), _row(FA=1, Pb=1, I=1)])
    g_near = cluster_groups(near)
    assert g_near[0] == g_near[1] != g_near[2]  # 0.03 apart: one group; FAPbI3 is 1 away
    folds = split_folds(t, 4, "cluster")
    g = cluster_groups(t)
    for c in np.unique(g):
        assert len(set(folds[g == c])) == 1


def test_one_shared_outer_split_keyed_on_the_canonical_composition() -> None:
    spec = preset("measured")
    films = _table(2, 60)
    # devices: several per composition, some compositions spelled with float noise, plus compositions without a film
    devices = pd.concat([films.iloc[np.repeat(np.arange(60), 3)] + 1e-7, _table(3, 20)], ignore_index=True)
    dft = films.copy()
    for split in ("family", "cluster", "grouped"):
        folds = chain_folds(spec, [dft, films, devices], split)
        assert set(folds) == {"film", "device"}  # the DFT stage holds computed values: its own folds
        fold_of = dict(zip(canonical_keys(films), folds["film"]))
        dev_keys = canonical_keys(devices)
        shared = [fold_of[k] for k in dev_keys[: 180]]
        assert np.array_equal(np.asarray(shared), folds["device"][:180])  # a composition's devices sit in its film's fold
    with pytest.raises(DataError, match="site-fraction"):
        composition_folds([pd.DataFrame({"x": [1.0, 2.0]})], 2, "grouped")


def test_given_folds_are_checked_and_used() -> None:
    from nestedae_core.data.synthetic import generate

    gen = generate()
    spec = preset("synthetic", epochs=2, folds=3)
    tables = {"materials": gen.materials, "devices": gen.devices}
    with pytest.raises(ConfigError, match="every fold id"):
        cross_validate(spec, tables, device="cpu", stage_folds={"materials": np.zeros(len(gen.materials), dtype=int)})
    mine = np.arange(len(gen.materials)) % 3
    r = cross_validate(spec, tables, device="cpu", stage_folds={"materials": mine})
    assert np.array_equal(r.folds["materials"], mine)


def test_accuracy_family_split_uses_the_same_disjoint_folds_for_every_model(data_dir) -> None:  # type: ignore[no-untyped-def]
    r = accuracy_benchmark(["bandgap-measured"], split="family", models=["mean", "ridge"], data_dir=str(data_dir))
    e = r["tasks"]["bandgap-measured"]
    assert r["split"] == "family" and "nested" in r["tuning"]
    ns = [[f["n"] for f in m["folds"]] for m in e["models"].values()]
    assert ns[0] == ns[1] and sum(ns[0]) == e["n"]
    with pytest.raises(ConfigError, match="unknown split"):
        accuracy_benchmark(["bandgap-measured"], split="leave-one-out", models=["mean"], data_dir=str(data_dir))


def test_calibration_holds_a_composition_out_of_every_measured_stage(data_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[dict[str, pd.DataFrame], dict[str, np.ndarray] | None]] = []

    class Fake:
        def predict(self, frame: pd.DataFrame, *, level: float = 0.9) -> dict[str, SimpleNamespace]:
            n = len(frame)
            return {st.name: SimpleNamespace(lower=np.zeros((n, len(st.targets))), upper=np.ones((n, len(st.targets))))
                    for st in preset("measured").stages}

    def fake_cross_validate(spec, tables, **kw):  # type: ignore[no-untyped-def]
        seen.append(({k: v.copy() for k, v in tables.items()}, kw.get("stage_folds")))
        return SimpleNamespace(model=Fake())

    monkeypatch.setattr(calibration_module, "cross_validate", fake_cross_validate)
    report = calibration_benchmark("measured", split="family", folds=5, data_dir=str(data_dir))
    assert report["split"] == "family" and report["shared_split_stages"] == ["device", "film"]
    full_film = set(family_of(calibration_module.stage_table(preset("measured"), 1, str(data_dir))))
    full_dev = set(family_of(calibration_module.stage_table(preset("measured"), 2, str(data_dir))))
    assert len(seen) == 5
    for tables, inner in seen:
        out_film = full_film - set(family_of(tables["film"]))
        out_dev = full_dev - set(family_of(tables["device"]))
        assert out_film or out_dev  # each outer fold leaves a family out
        assert out_film & full_dev <= out_dev and out_dev & full_film <= out_film  # ... of both measured stages at once
        assert inner is not None and set(inner) == {"film", "device"}
        # inner folds key the device stage on the composition: one fold per composition, never one per spelling
        fold_of: dict[str, int] = {}
        for k, f in zip(canonical_keys(tables["device"]), inner["device"]):
            assert fold_of.setdefault(k, f) == f


def test_calibration_inner_cluster_split_keeps_near_compositions_in_one_inner_fold(data_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``inner_split="cluster"``: the residuals that calibrate the intervals come from inner folds where no composition
    within 0.05 (site fractions) of a calibration row sits in its fold model's training; coverage is counted as before."""
    seen: list[tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]] = []

    class Fake:  # intervals that cover a film exactly when its measured gap is at least 1.6 eV
        def predict(self, frame: pd.DataFrame, *, level: float = 0.9) -> dict[str, SimpleNamespace]:
            n, out = len(frame), {}
            for st in preset("measured").stages:
                lower, upper = np.zeros((n, len(st.targets))), np.ones((n, len(st.targets)))
                if st.name == "film" and st.target_columns[0] in frame.columns:
                    y = frame[st.target_columns[0]].to_numpy(dtype=float)
                    lower[:, 0] = np.where(y >= 1.6, y - 0.1, y + 0.1)
                    upper[:, 0] = lower[:, 0] + 0.2
                out[st.name] = SimpleNamespace(lower=lower, upper=upper)
            return out

    def fake_cross_validate(spec, tables, **kw):  # type: ignore[no-untyped-def]
        seen.append(({k: v.copy() for k, v in tables.items()}, kw["stage_folds"]))
        return SimpleNamespace(model=Fake())

    monkeypatch.setattr(calibration_module, "cross_validate", fake_cross_validate)
    report = calibration_benchmark("measured", split="family", inner_split="cluster", folds=5, data_dir=str(data_dir))
    assert report["inner_split"] == "cluster" and len(seen) == 5
    film = calibration_module.stage_table(preset("measured"), 1, str(data_dir))
    gap = film[preset("measured").stages[1].target_columns[0]].to_numpy(dtype=float)
    q = next(r for r in report["quantities"] if r["stage"] == "film")
    assert q["n"] == int(np.isfinite(gap).sum()) and q["coverage"] == pytest.approx(float((gap[np.isfinite(gap)] >= 1.6).mean()))
    assert q["mean_width"] == pytest.approx(0.2)
    for tables, inner in seen:
        x = tables["film"].loc[:, list(SITE_FRACTION_COLUMNS)].to_numpy(dtype=float)
        near = np.abs(x[:, None, :] - x[None, :, :]).max(axis=-1) <= 0.05
        f = inner["film"]
        assert near.sum() > len(x)  # the table has near neighbours, so the check can fail
        assert (f[:, None] == f[None, :])[near].all()  # compositions within 0.05 never sit in two inner folds
        assert len(np.unique(f)) == 5
    # the default keeps grouped inner folds: near-duplicate compositions then do land in different inner folds
    seen.clear()
    calibration_benchmark("measured", split="family", folds=5, data_dir=str(data_dir))
    tables, inner = seen[0]
    x = tables["film"].loc[:, list(SITE_FRACTION_COLUMNS)].to_numpy(dtype=float)
    near = np.abs(x[:, None, :] - x[None, :, :]).max(axis=-1) <= 0.05
    assert not (inner["film"][:, None] == inner["film"][None, :])[near].all()


def test_calibration_inner_split_messages(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from nestedae_core.cli import main

    with pytest.raises(ConfigError, match="unknown inner split"):
        calibration_benchmark("synthetic", inner_split="leave-one-out")
    # a cluster inner split of a chain without site fractions: one line, no traceback
    code = main(["benchmark", "calibration", "--preset", "synthetic", "--inner-split", "cluster", "--folds", "3", "--epochs", "2",
                 "--json", str(tmp_path / "cal.json")])
    err = capsys.readouterr().err
    assert code != 0 and "site fractions" in err and "Traceback" not in err


def test_cli_split_choices_and_messages(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from nestedae_core.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "accuracy", "--split", "leave-one-out"])
    assert exc.value.code == 2 and "family" in capsys.readouterr().err
    # a family split of a chain without site fractions: one line, no traceback
    code = main(["benchmark", "calibration", "--preset", "synthetic", "--split", "family", "--folds", "3", "--epochs", "2",
                 "--json", str(tmp_path / "cal.json")])
    err = capsys.readouterr().err
    assert code != 0 and "site fractions" in err and "Traceback" not in err


def test_a_dft_task_is_split_by_family_on_its_own_table(data_dir) -> None:  # type: ignore[no-untyped-def]
    r = accuracy_benchmark(["bandgap-paper"], split="family", models=["mean"], folds=3, data_dir=str(data_dir))
    held = r["tasks"]["bandgap-paper"]["fold_families"]
    assert len(held) == 3 and all(held)
    assert not set(held[0]) & set(held[1]) and not set(held[1]) & set(held[2]) and not set(held[0]) & set(held[2])
