"""Chain configuration: validation, JSON/TOML round trips, presets."""
from __future__ import annotations

import json

import pytest

from nestedae_core.model.config import ChainSpec, StageSpec, TargetSpec, load_chain_spec
from nestedae_core.errors import ConfigError
from nestedae_core.perovskite.presets import PRESETS, preset

pytestmark = pytest.mark.unit


def test_every_preset_round_trips_through_json() -> None:
    for name in PRESETS:
        spec = preset(name)
        again = ChainSpec.from_json(spec.to_json())
        assert again == spec
        assert again.stages[0].upstream is False


def test_paper_preset_matches_the_papers_architecture() -> None:
    spec = preset("paper")
    s1, s2 = spec.stages
    assert len(s1.numeric_inputs) == 15 and s1.latent_dim == 12 and s1.encoder_hidden == []
    assert s1.latent_activation == "tanh" and s1.l1 == pytest.approx(1e-2)
    assert s1.head_hidden == [100] and s1.head_dropout == pytest.approx(0.1)
    assert [t.column for t in s1.targets] == ["Gap"] and s1.targets[0].loss == "mae"
    assert s2.upstream and s2.categorical_inputs == ["ETL_stack_sequence", "HTL_stack_sequence"]
    assert [t.column for t in s2.targets] == ["JV_reverse_scan_PCE"]
    exact = preset("paper-exact")
    assert exact.stages[0].batch_size == 10 and exact.stages[0].lr == pytest.approx(1e-3) and exact.stages[0].epochs == 1500
    assert exact.stages[1].batch_size == 100


def test_preset_overrides_and_unknown_preset() -> None:
    spec = preset("paper", epochs=7, folds=3, split="grouped", seed=4)
    assert [s.epochs for s in spec.stages] == [7, 7]
    assert (spec.folds, spec.split, spec.seed) == (3, "grouped", 4)
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known: paper"):
        preset("nope")
    with pytest.raises(ConfigError, match="folds"):
        preset("paper", folds=1)


def test_invalid_specs_name_the_problem() -> None:
    tgt = [TargetSpec(column="y")]
    with pytest.raises(ValueError, match="no inputs"):
        StageSpec(name="s", dataset="d", targets=tgt)
    with pytest.raises(ValueError, match="uses its target as an input: y"):
        StageSpec(name="s", dataset="d", numeric_inputs=["y"], targets=tgt)
    with pytest.raises(ValueError, match="twice: a"):
        StageSpec(name="s", dataset="d", numeric_inputs=["a", "a"], targets=tgt)
    up = StageSpec(name="s", dataset="d", upstream=True, targets=tgt)
    with pytest.raises(ValueError, match="first stage cannot consume upstream"):
        ChainSpec(stages=[up])
    with pytest.raises(ConfigError, match="latent_dim"):
        ChainSpec.from_json(json.dumps({"stages": [{"name": "s", "dataset": "d", "numeric_inputs": ["a"], "targets": [{"column": "y"}], "latent_dim": 0}]}))


def test_partial_toml_config_merges_over_the_preset(tmp_path) -> None:
    f = tmp_path / "cfg.toml"
    f.write_text('seed = 3\n[[stages]]\nlatent_dim = 6\nactivation = "gelu"\n', encoding="utf-8")
    spec = load_chain_spec(f, base=preset("paper"))
    assert spec.seed == 3
    assert spec.stages[0].latent_dim == 6 and spec.stages[0].activation == "gelu"
    assert spec.stages[1].latent_dim == 18  # untouched


def test_bad_config_files_give_config_errors(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_chain_spec(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_chain_spec(tmp_path / "missing.toml")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"stages": [{"name": "s", "dataset": "d", "numeric_inputs": ["a"], "targets": [{"column": "y"}], "activation": "swish"}]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="activation"):
        load_chain_spec(wrong)


def test_targets_name_their_fidelity_and_bounds_and_old_configs_still_load() -> None:
    from nestedae_core.perovskite.fidelity import target_fidelity

    old = {"stages": [{"name": "s", "dataset": "mhp-pbe-paper", "numeric_inputs": ["a"], "targets": [{"column": "Gap", "label": "band gap", "unit": "eV"}]}]}
    spec = ChainSpec.model_validate(old)  # a config.json written before the fields existed
    t = spec.stages[0].targets[0]
    assert t.fidelity is None and t.bounds == "real"
    assert target_fidelity(spec.stages[0], t) == "PBE"
    hse = StageSpec(name="s", dataset="mhp-hse", numeric_inputs=["a"], targets=[TargetSpec(column="Gap")])
    assert target_fidelity(hse, hse.targets[0]) == "HSE"
    film = StageSpec(name="f", dataset="psc-gaps", numeric_inputs=["a"], targets=[TargetSpec(column="Perovskite_band_gap"), TargetSpec(column="PCE")])
    assert [target_fidelity(film, t) for t in film.targets] == ["measured", None]
    explicit = StageSpec(name="d", dataset="mhp-dft", numeric_inputs=["a"], targets=[TargetSpec(column="Gap_HSE", fidelity="HSE"), TargetSpec(column="Gap", fidelity="measured")])
    assert [target_fidelity(explicit, t) for t in explicit.targets] == ["HSE", "measured"]  # explicit beats the inference
    pce = TargetSpec(column="PCE", bounds="positive")
    assert ChainSpec.from_json(ChainSpec(stages=[StageSpec(name="d", dataset="x", numeric_inputs=["a"], targets=[pce])]).to_json()).stages[0].targets[0].bounds == "positive"
    with pytest.raises(ValueError, match="bounds"):
        TargetSpec(column="FF", bounds="percent")
    with pytest.raises(ValueError, match="fidelity"):
        TargetSpec(column="Gap", fidelity="GW")
