"""Training the chain: cross-validation (folds, determinism, ensembles, failures) and the all-rows fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.errors import ConfigError, InputError, TrainingError
from nestedae_core.perovskite.presets import preset
from nestedae_core.data.synthetic import generate
from nestedae_core.train import TrainingCancelled, cross_validate, fit, make_folds
from nestedae_core.train import stages as train_stages

pytestmark = pytest.mark.training

needs_data = pytest.mark.usefixtures("data_dir")


def test_random_folds_are_a_seeded_partition() -> None:
    t = pd.DataFrame({"g": np.repeat(np.arange(20), 3)})
    f = make_folds(t, 5, "random", None, seed=1)
    assert sorted(np.unique(f)) == [0, 1, 2, 3, 4] and len(f) == 60
    assert np.array_equal(f, make_folds(t, 5, "random", None, seed=1))
    assert not np.array_equal(f, make_folds(t, 5, "random", None, seed=2))


def test_grouped_folds_never_split_a_group() -> None:
    t = pd.DataFrame({"a": np.repeat(np.arange(30), 4), "b": "x"})
    f = make_folds(t, 5, "grouped", ["a", "b"], seed=0)
    per_group = pd.Series(f).groupby(t["a"]).nunique()
    assert (per_group == 1).all()
    with pytest.raises(ConfigError, match="group_columns"):
        make_folds(t, 5, "grouped", [], seed=0)
    with pytest.raises(ConfigError, match="at least 5 groups"):
        make_folds(pd.DataFrame({"a": [1, 1, 2, 2, 2, 1]}), 5, "grouped", ["a"], seed=0)


def test_same_seed_gives_identical_metrics_on_cpu() -> None:
    a = cross_validate(preset("synthetic", epochs=15, folds=3, seed=5), device="cpu")
    b = cross_validate(preset("synthetic", epochs=15, folds=3, seed=5), device="cpu")
    c = cross_validate(preset("synthetic", epochs=15, folds=3, seed=6), device="cpu")
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def test_oof_predictions_come_from_the_fold_member_and_metrics_match_them(tiny_synthetic) -> None:
    r = tiny_synthetic
    model, oof, table = r.model, r.oof["materials"], r.tables["materials"]
    members = model.predict_stage("materials", table).members[:, :, 0]
    fold = r.folds["materials"]
    expected = members[fold, np.arange(len(table))]
    assert np.allclose(oof["y1_pred"].to_numpy(), expected, atol=1e-5)
    for fm in r.metrics["materials"]["y1"]["folds"]:
        sel = oof["fold"] == fm["fold"]
        mae = np.abs(oof.loc[sel, "y1_pred"] - oof.loc[sel, "y1_true"]).mean()
        assert fm["mae"] == pytest.approx(mae, rel=1e-9)


def test_ensemble_mean_and_spread(tiny_synthetic) -> None:
    r = tiny_synthetic
    p = r.model.predict_stage("devices", r.tables["devices"].head(50))
    assert p.members.shape == (3, 50, 1)
    assert np.allclose(p.mean, p.members.mean(axis=0))
    assert (p.std > 0).all()


def test_synthetic_chain_learns_better_than_the_mean() -> None:
    r = cross_validate(preset("synthetic", epochs=300, folds=3), device="cpu")
    y1 = r.tables["materials"]["y1"]
    y2 = r.tables["devices"]["y2"]
    assert r.metrics["materials"]["y1"]["mae"] < 0.5 * np.abs(y1 - y1.mean()).mean()
    assert r.metrics["devices"]["y2"]["mae"] < 0.5 * np.abs(y2 - y2.mean()).mean()


def test_progress_callback_and_cancel() -> None:
    events = []
    cross_validate(preset("synthetic", epochs=20, folds=2), device="cpu", callback=events.append)
    assert events and events[-1].fraction == pytest.approx(1.0)
    assert {e.stage for e in events} == {"materials", "devices"}
    assert all(b.fraction >= a.fraction for a, b in zip(events, events[1:]))
    with pytest.raises(TrainingCancelled, match="cancelled during stage 'materials'"):
        cross_validate(preset("synthetic", epochs=50, folds=2), device="cpu", should_stop=lambda: True)


def test_non_finite_input_is_reported_before_training() -> None:
    from nestedae_core.errors import InputError

    data = generate()
    mats = data.materials.copy()
    mats.loc[3, "x0"] = np.inf
    with pytest.raises(InputError, match=r"non-finite values in input column\(s\) x0"):
        cross_validate(preset("synthetic", epochs=5, folds=2), {"materials": mats, "devices": data.devices}, device="cpu")


def test_diverging_loss_stops_training() -> None:
    spec = preset("synthetic", epochs=200, folds=2)
    data = spec.model_dump()
    data["stages"][0]["lr"] = 1.0
    data["stages"][0]["l1"] = 0.0
    data["stages"][0]["schedule"] = "constant"
    data["stages"][0]["targets"][0]["loss"] = "mse"
    from nestedae_core.model.config import ChainSpec

    with pytest.raises(TrainingError, match="diverged|non-finite"):
        cross_validate(ChainSpec.model_validate(data), device="cpu")


def test_early_stopping_holds_out_rows_of_the_training_folds_only() -> None:
    spec = preset("synthetic", epochs=400, folds=3)
    data = spec.model_dump()
    for s in data["stages"]:
        s["patience"] = 20
        s["lr"] = 0.05
    from nestedae_core.model.config import ChainSpec

    events = []
    r = cross_validate(ChainSpec.model_validate(data), device="cpu", callback=events.append)
    assert any(e.val_loss is not None for e in events)
    stopped = [e for e in events if e.stage == "materials"][-1]
    assert stopped.epoch < 400  # stopped early
    assert np.isfinite(r.metrics["materials"]["y1"]["mae"])


def test_unknown_device_is_a_clear_error() -> None:
    from nestedae_core.errors import InputError

    with pytest.raises(InputError, match=r"device 'cuda:7' is not available on this machine.*; available: cpu"):
        cross_validate(preset("synthetic", epochs=2, folds=2), device="cuda:7")


@needs_data
def test_paper_chain_trains_on_the_real_data_and_stage2_uses_stage1_latents(tiny_paper) -> None:
    r = tiny_paper
    m = r.model
    assert m.input_names("devices")[:12] == [f"materials.z{i}" for i in range(1, 13)]
    assert m.raw_columns("devices")[-2:] == ["ETL_stack_sequence", "HTL_stack_sequence"]
    assert r.metrics["materials"]["Gap"]["n"] == len(r.tables["materials"])
    assert len(r.metrics["devices"]["JV_reverse_scan_PCE"]["folds"]) == 5
    assert r.model.record["data"]["materials"]["sha256"]


@needs_data
def test_grouped_split_on_devices_keeps_recipes_apart() -> None:
    r = cross_validate(preset("paper", epochs=3, split="grouped"), device="cpu")
    t, f = r.tables["devices"], r.folds["devices"]
    key = t["Perovskite_composition_long_form"] + t["ETL_stack_sequence"] + t["HTL_stack_sequence"]
    assert (pd.Series(f).groupby(key.to_numpy()).nunique() == 1).all()


@needs_data
def test_extra_heads_with_missing_targets_and_extra_inputs() -> None:
    from nestedae_core.predict import predict_composition

    r = cross_validate(preset("paper-jv", epochs=3, folds=2), device="cpu")
    dev = r.metrics["devices"]
    assert set(dev) == {"JV_reverse_scan_PCE", "JV_reverse_scan_Voc", "JV_reverse_scan_Jsc", "JV_reverse_scan_FF"}
    # Voc is missing for some devices: those rows are masked, not dropped
    assert dev["JV_reverse_scan_Voc"]["n"] < dev["JV_reverse_scan_PCE"]["n"] == len(r.tables["devices"])
    # the interval calibration holds one out-of-fold residual per present target value, with its fold
    cal = r.model.calibration["devices"]
    assert {t: len(c) for t, c in cal.items()} == {t: v["n"] for t, v in dev.items()}
    assert set(np.unique(cal["JV_reverse_scan_Voc"].fold)) == {0, 1}
    assert "Decomp" in r.metrics["materials"]
    ext = cross_validate(preset("pbe-extended", epochs=3, folds=2), device="cpu")
    assert ext.model.input_names(0)[-1] == "phase"
    res = predict_composition(ext.model, "CsPbI3", categorical={"phase": "Ortho"})
    assert res.categorical["phase"] == "Ortho" and "Gap" in res.targets


# --------------------------------------------------------------------------- fit on all rows


def _recording_fit_stage(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Record the (train, early-stopping) masks every stage is fitted with."""
    seen: list[tuple[np.ndarray, np.ndarray | None]] = []
    real = train_stages.fit_stage

    def recording(net, spec, data, train_mask, val_mask, **kw):  # type: ignore[no-untyped-def]
        seen.append((train_mask.cpu().numpy(), None if val_mask is None else val_mask.cpu().numpy()))
        return real(net, spec, data, train_mask, val_mask, **kw)

    monkeypatch.setattr(train_stages, "fit_stage", recording)
    return seen


def test_fit_trains_every_member_on_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _recording_fit_stage(monkeypatch)
    data = generate()
    tables = {"materials": data.materials, "devices": data.devices}
    model = fit(preset("synthetic", epochs=15, folds=3, seed=4), tables, device="cpu")
    assert model.members == 3 and len(seen) == 2
    for (train_mask, val_mask), name in zip(seen, ["materials", "devices"]):
        assert train_mask.shape == (3, len(tables[name])) and (train_mask == 1).all() and val_mask is None
    # each member standardised its targets over all rows
    y1 = data.materials["y1"].to_numpy()
    assert np.allclose(model.prep[0].target_mean[:, 0], y1.mean()) and np.allclose(model.prep[0].target_scale[:, 0], y1.std())
    pred = model.predict_stage("devices", data.devices)
    assert np.isfinite(pred.members).all() and (pred.std > 0).all()  # members differ by their random draws
    assert len(model.domains) == len(model.backgrounds) == 2
    assert model.metrics == {}  # nothing held out: no validation metrics
    assert model.calibration == {} and pred.lower is None  # ... and no out-of-fold residuals: no intervals
    assert model.record["fit"] == {"rows": "all", "members": 3}
    fit_y1 = model.record["training_metrics"]["materials"]["y1"]
    assert fit_y1["n"] == len(y1) and np.isfinite(fit_y1["mae"])


def test_fit_same_seed_same_model_and_members_option() -> None:
    spec = preset("synthetic", epochs=10, folds=2, seed=3)
    a, b = fit(spec, device="cpu"), fit(spec, device="cpu")
    for na, nb in zip(a.nets, b.nets):
        for (k, va), vb in zip(na.state_dict().items(), nb.state_dict().values()):
            assert np.array_equal(va.numpy(), vb.numpy()), k
    assert a.record["training_metrics"] == b.record["training_metrics"]
    c = fit(spec.with_updates(seed=4), device="cpu")
    assert a.record["training_metrics"] != c.record["training_metrics"]
    one = fit(spec, device="cpu", members=1)
    assert one.members == 1 and one.predict_stage("materials", one.backgrounds[0]).members.shape[0] == 1
    with pytest.raises(InputError, match="members must be a positive integer"):
        fit(spec, device="cpu", members=0)


def test_fit_early_stopping_carves_its_rows_out_of_the_training_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _recording_fit_stage(monkeypatch)
    spec = preset("synthetic", epochs=30, folds=2).with_updates(stages=[{"patience": 5}, {"patience": 5}])
    fit(spec, device="cpu")
    for train_mask, val_mask in seen:
        assert val_mask is not None and (train_mask + val_mask == 1).all()
        assert ((val_mask.sum(axis=1) / train_mask.shape[1]) == pytest.approx(spec.stages[0].val_fraction, abs=0.01))
        assert not np.array_equal(val_mask[0], val_mask[1])  # each member holds out its own rows


def test_cross_validation_trains_each_member_outside_its_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _recording_fit_stage(monkeypatch)
    r = cross_validate(preset("synthetic", epochs=5, folds=3), device="cpu")
    for (train_mask, val_mask), name in zip(seen, ["materials", "devices"]):
        assert val_mask is None
        assert np.array_equal(train_mask.astype(bool), r.folds[name][None, :] != np.arange(3)[:, None])
