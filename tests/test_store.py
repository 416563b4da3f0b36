"""Model bundles: round trip, atomic save, tamper/corruption detection, the shipped default."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nestedae_core import store
from nestedae_core.errors import BundleError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def bundle(tiny_synthetic, tmp_path_factory):
    r = tiny_synthetic
    path = store.save_bundle(r, tmp_path_factory.mktemp("b") / "syn")
    return r, path


def test_round_trip_gives_identical_predictions(bundle) -> None:
    r, path = bundle
    loaded = store.load_bundle(path)
    frame = r.tables["devices"].head(20)
    a = r.model.predict(frame)
    b = loaded.predict(frame)
    for k in a:
        assert np.allclose(a[k].members, b[k].members, atol=1e-6)
        assert np.array_equal(a[k].in_domain, b[k].in_domain)
    assert loaded.metrics == json.loads(json.dumps(r.metrics))
    assert loaded.spec == r.model.spec
    assert list(loaded.backgrounds[1].columns) == loaded.raw_columns(1)


def test_bundle_has_no_pickle_and_no_target_values(bundle) -> None:
    _, path = bundle
    names = sorted(p.name for p in path.iterdir())
    assert names == sorted(["config.json", "weights.safetensors", "preprocessing.json", "metrics.json", "record.json", "oof.csv", "calibration.json", "manifest.json"])
    header = (path / "oof.csv").read_text().splitlines()[0]
    assert "_pred" in header and "_true" not in header
    # the calibration holds residuals sorted by fold and size: they cannot be paired with the rows of oof.csv
    cal = json.loads((path / "calibration.json").read_text())
    assert cal["method"] == "CV+"
    for targets in cal["stages"].values():
        for c in targets.values():
            pairs = list(zip(c["fold"], c["residual"]))
            assert pairs == sorted(pairs) and len(pairs) > 10


def test_intervals_survive_the_round_trip_and_old_bundles_have_none(bundle, tmp_path) -> None:
    r, path = bundle
    loaded = store.load_bundle(path)
    frame = r.tables["devices"].head(15)
    for level in (0.9, 0.5):
        a, b = r.model.predict(frame, level=level), loaded.predict(frame, level=level)
        for k in a:
            assert a[k].lower is not None and a[k].level == level
            assert np.allclose(a[k].lower, b[k].lower, atol=1e-5) and np.allclose(a[k].upper, b[k].upper, atol=1e-5)
    assert loaded.has_intervals and "CV+" in loaded.summary()["prediction intervals"]
    # a bundle written before calibration.json existed: no file, no manifest entry
    old = _copy(path, tmp_path)
    (old / "calibration.json").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["sha256"]["calibration.json"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    plain = store.load_bundle(old)
    assert not plain.has_intervals and plain.calibration == {}
    sp = plain.predict(frame)["devices"]
    assert sp.lower is None and sp.upper is None
    assert np.allclose(sp.members, loaded.predict(frame)["devices"].members)
    assert "none" in plain.summary()["prediction intervals"]
    # a listed calibration that was changed is caught like any other file
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    cal = json.loads((bad / "calibration.json").read_text())
    first = next(iter(next(iter(cal["stages"].values())).values()))
    first["residual"][0] += 1.0
    (bad / "calibration.json").write_text(json.dumps(cal))
    with pytest.raises(BundleError, match="calibration.json in .* does not match its checksum"):
        store.load_bundle(bad)


def _copy(path, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(path, dst)
    return dst


def test_tampered_weights_are_rejected(bundle, tmp_path) -> None:
    dst = _copy(bundle[1], tmp_path)
    data = bytearray((dst / "weights.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (dst / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its checksum"):
        store.load_bundle(dst)


def test_missing_and_corrupt_files_are_clear_errors(bundle, tmp_path) -> None:
    dst = _copy(bundle[1], tmp_path)
    (dst / "metrics.json").unlink()
    with pytest.raises(BundleError, match="metrics.json is missing"):
        store.load_bundle(dst)
    with pytest.raises(BundleError, match="no model bundle at"):
        store.load_bundle(tmp_path / "nothing")
    dst2 = tmp_path / "c2"
    shutil.copytree(bundle[1], dst2)
    (dst2 / "manifest.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(BundleError, match="not valid JSON"):
        store.load_bundle(dst2)


def test_incompatible_format_and_shapes(bundle, tmp_path) -> None:
    dst = _copy(bundle[1], tmp_path)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["format"] = 999
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="format 999"):
        store.load_bundle(dst, verify=False)
    cfg["format"] = store.BUNDLE_FORMAT
    cfg["spec"]["stages"][0]["latent_dim"] = 3
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="do not fit its configuration"):
        store.load_bundle(dst, verify=False)


def test_save_is_atomic(bundle, tmp_path, monkeypatch) -> None:
    r, _ = bundle

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.saving, "save_file", boom)
    with pytest.raises(BundleError, match="cannot save the model: .*disk full"):
        store.save_bundle(r, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary directory left behind


def test_overwrite_replaces_a_bundle_whole(bundle, tmp_path) -> None:
    r, _ = bundle
    p = store.save_bundle(r, tmp_path / "m")
    (p / "stray.txt").write_text("x")
    with pytest.raises(BundleError, match="already exists"):
        store.save_bundle(r, tmp_path / "m")  # overwrite=False is the default
    assert (tmp_path / "m" / "stray.txt").exists()
    with pytest.raises(BundleError, match="stray.txt"):  # a file that is not the bundle's: never deleted
        store.save_bundle(r, tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "stray.txt").read_text() == "x"
    (p / "stray.txt").unlink()
    old_weights = (p / "weights.safetensors").stat().st_ino
    store.save_bundle(r, tmp_path / "m", overwrite=True)
    assert (p / "weights.safetensors").stat().st_ino != old_weights  # replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary or old folder left


def test_list_bundles_finds_user_models(bundle, tmp_path, monkeypatch) -> None:
    r, _ = bundle
    monkeypatch.setenv(store.MODELS_DIR_ENV, str(tmp_path))
    store.save_bundle(r, tmp_path / "mine")
    found = {b.name: b for b in store.list_bundles()}
    assert "mine" in found and not found["mine"].builtin
    assert found["mine"].headline["materials/y1"] == pytest.approx(r.metrics["materials"]["y1"]["mae"])


def test_default_bundle_ships_and_loads() -> None:
    model = store.load_default_bundle()
    assert model.spec.name == "measured" and model.stage_names == ["dft", "film", "device"]
    assert model.members == 5
    from nestedae_core.predict import predict_composition

    res = predict_composition(model, "MAPbI3")
    assert 1.5 < res.targets["Perovskite_band_gap"]["mean"] < 1.7  # measured: 1.60 eV
    assert res.targets["Perovskite_band_gap"]["lower"] < res.targets["Perovskite_band_gap"]["mean"] < res.targets["Perovskite_band_gap"]["upper"]


def test_paper_bundle_still_ships_and_loads() -> None:
    model = store.load_bundle(store.shipped_bundle_path("paper-default"))
    assert model.spec.name == "paper" and model.members == 5
    from nestedae_core.predict import predict_composition

    res = predict_composition(model, "MAPbI3")
    assert 1.0 < res.targets["Gap"]["mean"] < 2.5
    assert 5.0 < res.targets["JV_reverse_scan_PCE"]["mean"] < 25.0


def test_default_bundle_metrics_match_a_re_evaluation(data_dir) -> None:
    """The shipped model's recorded fold metrics are reproduced from its weights and the data."""
    from nestedae_core.data.tables import check_stage_table, load_chain_tables
    from nestedae_core.train import regression_metrics

    model = store.load_default_bundle()
    tables = load_chain_tables(model.spec)
    for i, st in enumerate(model.spec.stages):
        up = model.raw_columns(i - 1) if st.upstream else []
        table = check_stage_table(st, tables[st.name], up)
        folds = np.asarray(model.record["folds"][st.name])
        assert len(folds) == len(table)
        members = model.predict_stage(i, table, own_limits=True).members  # each member's limits as in training
        for j, t in enumerate(st.target_columns):
            pred = members[folds, np.arange(len(table)), j]
            y = table[t].to_numpy(dtype=float)
            for fm in model.metrics[st.name][t]["folds"]:
                sel = folds == fm["fold"]
                again = regression_metrics(y[sel], pred[sel])
                assert again["mae"] == pytest.approx(fm["mae"], rel=1e-4, abs=1e-5)
                assert again["r2"] == pytest.approx(fm["r2"], rel=1e-4, abs=1e-5)
