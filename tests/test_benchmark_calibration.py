"""The calibration benchmark: nested grouped folds, coverage counting, and its CLI's argument errors."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nestedae_core.benchmark import calibration as calibration_module
from nestedae_core.benchmark import calibration_benchmark
from nestedae_core.benchmark.calibration import interval_coverage, intervals_available
from nestedae_core.cli import main
from nestedae_core.errors import ConfigError
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.unit


def test_interval_coverage_counts_ends_and_skips_missing_values() -> None:
    y = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    lower = np.array([0.0, 2.0, 3.5, 0.0, 4.0])
    upper = np.array([2.0, 3.0, 4.0, 1.0, 5.0])
    c = interval_coverage(y, lower, upper)
    assert (c["n"], c["covered"]) == (4, 3)  # 1 inside, 2 and 5 on an end, 3 below
    assert c["coverage"] == pytest.approx(0.75)
    assert c["mean_width"] == pytest.approx((2 + 1 + 0.5 + 1) / 4)
    assert np.isnan(interval_coverage(np.array([np.nan]), np.zeros(1), np.ones(1))["coverage"])


class _FakeModel:
    """Intervals that cover a row exactly when its ``x0`` (materials) or ``d0`` (devices) is positive."""

    def __init__(self, training: dict[str, pd.DataFrame]) -> None:
        self.training = training

    def predict(self, frame: pd.DataFrame, *, level: float = 0.9) -> dict[str, SimpleNamespace]:
        out = {}
        for stage, key, target in (("materials", "x0", "y1"), ("devices", "d0", "y2")):
            if key in frame.columns and target in frame.columns:
                y = frame[target].to_numpy(dtype=float)
                hit = frame[key].to_numpy() > 0
                lower = np.where(hit, y - 0.5, y + 1.0)[:, None]
                out[stage] = SimpleNamespace(lower=lower, upper=lower + 1.0, in_domain=np.arange(len(frame)) % 3 != 0)
        return out


def test_calibration_protocol_holds_out_each_group_once(monkeypatch) -> None:
    seen: list[dict[str, pd.DataFrame]] = []

    def fake_cross_validate(spec, tables, **kw):  # type: ignore[no-untyped-def]
        assert spec.split == "grouped" and spec.folds == 3
        seen.append({k: v.copy() for k, v in tables.items()})
        return SimpleNamespace(model=_FakeModel(tables))

    monkeypatch.setattr(calibration_module, "intervals_available", lambda: None)
    monkeypatch.setattr(calibration_module, "cross_validate", fake_cross_validate)
    from nestedae_core.data.synthetic import generate

    gen = generate()
    report = calibration_benchmark("synthetic", folds=3, level=0.8)
    assert len(seen) == 3 and report["level"] == 0.8 and report["split"] == "grouped"
    q = {(r["stage"], r["target"]): r for r in report["quantities"]}
    for stage, full, key, target in (("materials", gen.materials, "x0", "y1"), ("devices", gen.devices, "d0", "y2")):
        r = q[(stage, target)]
        finite = full[target].notna()
        assert r["n"] == int(finite.sum())  # every row held out exactly once
        assert r["coverage"] == pytest.approx(float((full.loc[finite, key] > 0).mean()))
        assert r["mean_width"] == pytest.approx(1.0) and len(r["folds"]) == 3
        # in-domain and flagged rows are counted apart, and together they are every row
        assert r["in_domain"]["n"] + r["flagged"]["n"] == r["n"] and r["flagged"]["n"] > 0 and r["in_domain"]["n"] > r["flagged"]["n"]
        covered = r["in_domain"]["coverage"] * r["in_domain"]["n"] + r["flagged"]["coverage"] * r["flagged"]["n"]
        assert covered == pytest.approx(r["coverage"] * r["n"])
        # a held-out group is never in the training rows of its outer fold
        trained_groups = [set(s[stage]["material_id"]) for s in seen]
        all_groups = set(full["material_id"])
        held = [all_groups - g for g in trained_groups]
        assert all(h for h in held) and set().union(*held) == all_groups
        assert sum(len(h) for h in held) == len(all_groups)  # the outer folds partition the groups
    json.dumps(report)


def test_calibration_refuses_bad_levels_and_missing_intervals(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        calibration_benchmark("synthetic", level=1.0)
    monkeypatch.setattr(calibration_module, "intervals_available", lambda: "prediction intervals are not available in this version")
    with pytest.raises(ConfigError, match="not available"):
        calibration_benchmark("synthetic")


@pytest.mark.training  # trains a model
def test_calibration_benchmark_end_to_end_on_a_tiny_synthetic_chain() -> None:
    why = intervals_available()
    if why:
        pytest.skip(f"{why}: the calibration benchmark needs StagePrediction.lower/upper")
    report = calibration_benchmark(spec=preset("synthetic"), folds=3, epochs=40, device="cpu")
    assert report["coverage_target"] == [0.85, 0.95] and report["epochs"] == {"materials": 40, "devices": 40}
    assert [(r["stage"], r["target"]) for r in report["quantities"]] == [("materials", "y1"), ("devices", "y2")]
    for r in report["quantities"]:
        assert r["n"] > 0 and r["mean_width"] > 0
        # CV+ intervals hold roughly at their level even for a briefly trained model
        assert 0.7 <= r["coverage"] <= 1.0, r


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--level", "1.5"], "argument --level: invalid level 1.5: it must be between 0 and 1"),
        (["--level", "0"], "argument --level: invalid level 0: it must be between 0 and 1"),
        (["--level", "ninety"], "argument --level: invalid level 'ninety'"),
        (["--folds", "1"], "argument --folds: invalid fold count 1: at least 2 folds are needed"),
        (["--epochs", "0"], "argument --epochs: invalid number 0: it must be at least 1"),
    ],
)
def test_cli_calibration_argument_errors(argv, message, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "calibration", "--json", str(tmp_path / "c.json"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "c.json").exists()


def test_cli_calibration_needs_json_and_a_known_preset(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["benchmark", "calibration"])
    assert "the following arguments are required: --json" in capsys.readouterr().err
    assert main(["benchmark", "calibration", "--json", str(tmp_path / "c.json"), "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nestedae: error: unknown preset 'nope'; known:") and err.count("\n") == 1


def test_cli_paper_score(data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "paper.json"
    assert main(["benchmark", "paper-score", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2.3843" in printed and "2.6086" in printed and "not a better model" in printed
    assert json.loads(out.read_text())["mae_paper_batches"] == pytest.approx(2.3843, abs=1e-4)


@pytest.mark.training  # trains a model
def test_cli_calibration_prints_a_table_and_writes_json(tmp_path, capsys) -> None:
    why = intervals_available()
    if why:
        pytest.skip(f"{why}: the calibration benchmark needs StagePrediction.lower/upper")
    out = tmp_path / "cal.json"
    assert main(["benchmark", "calibration", "--preset", "synthetic", "--folds", "3", "--epochs", "20", "--level", "0.8", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "synthetic: 80 % prediction intervals, 3 outer grouped folds" in printed
    assert "coverage (%)" in printed and "materials" in printed and "devices" in printed
    js = json.loads(out.read_text())
    assert js["kind"] == "calibration" and js["level"] == 0.8 and js["coverage_target"] is None


def test_a_row_is_in_domain_by_its_own_and_upstream_stages_only() -> None:
    """A DFT row whose composition the film stage never saw is still inside the DFT stage's domain."""
    from nestedae_core.benchmark.calibration import inside_upstream_domains

    preds = {
        "dft": SimpleNamespace(in_domain=np.array([True, True, False])),
        "film": SimpleNamespace(in_domain=np.array([True, False, True])),
        "device": SimpleNamespace(in_domain=np.array([False, True, True])),
    }
    assert inside_upstream_domains(preds, ["dft"], 3).tolist() == [True, True, False]
    assert inside_upstream_domains(preds, ["dft", "film"], 3).tolist() == [True, False, False]
    assert inside_upstream_domains(preds, ["dft", "film", "device"], 3).tolist() == [False, False, False]
    assert inside_upstream_domains({"dft": SimpleNamespace(in_domain=None)}, ["dft"], 2).tolist() == [True, True]


def test_the_stages_a_prediction_depends_on_stop_at_a_stage_without_upstream() -> None:
    """The domain verdicts that count for a stage: its own and those of the stages whose latents reach it."""
    from nestedae_core.benchmark.calibration import stages_feeding
    from nestedae_core.perovskite.presets import preset

    chain = preset("measured")
    names = [st.name for st in chain.stages]
    assert len(names) == 3 and all(st.upstream for st in chain.stages[1:])
    assert [stages_feeding(chain, i) for i in range(3)] == [names[:1], names[:2], names]
    cut = chain.model_copy(update={"stages": [chain.stages[0], chain.stages[1].model_copy(update={"upstream": False}), chain.stages[2]]})
    assert [stages_feeding(cut, i) for i in range(3)] == [names[:1], names[1:2], names[1:]]
