"""Device heads that are physics: ceilings of an upstream prediction, product targets, intervals inside the limits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nestedae_core.errors import ConfigError
from nestedae_core.model.ceilings import ceiling_function, register_ceiling, target_caps, upstream_ceilings
from nestedae_core.model.config import Ceiling, ChainSpec, Product, StageSpec, TargetSpec
from nestedae_core.model.intervals import (
    TargetCalibration,
    calibrate_target,
    calibration_from_json,
    calibration_to_json,
    conformal_interval,
)
from nestedae_core.model.nn import StageLayout, StageNet
from nestedae_core.physics import ceilings as sq
from nestedae_core.physics import sq_limit

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- the physics ceilings


def test_tabulated_limits_never_exceed_the_exact_limit_and_stay_close_to_it() -> None:
    rng = np.random.default_rng(0)
    gaps = np.concatenate([rng.uniform(0.06, 4.49, 20000), np.linspace(0.9, 3.3, 4001)])
    exact = sq_limit(gaps)
    t = torch.as_tensor(gaps)
    for fn, key, close in ((sq.shockley_queisser_jsc, "jsc_mA_per_cm2", 0.11), (sq.radiative_voc, "voc_V", 0.0025), (sq.shockley_queisser_ff, "ff", 0.001)):
        table = fn(t).numpy()
        assert (table <= exact[key]).all(), key
        inside = (gaps > 1.1) & (gaps < 3.2)
        assert (exact[key][inside] - table[inside]).max() < close, key
    # below the grid: Voc and FF fall to 0 (a gap that small has no voltage), Jsc holds a lower value
    low = torch.tensor([0.01, 0.04])
    assert (sq.radiative_voc(low) == 0).all() and (sq.shockley_queisser_ff(low) == 0).all()
    assert (sq.shockley_queisser_jsc(low).numpy() <= sq_limit(np.array([0.01, 0.04]))["jsc_mA_per_cm2"]).all()


def test_shipped_table_is_what_tabulate_ceilings_gives() -> None:
    import json

    shipped = json.loads(sq.CEILINGS_FILE.read_text())
    part = sq.tabulate_ceilings(start_eV=1.5, stop_eV=1.7)  # a slice of the grid, same step
    k = int(round((1.5 - shipped["start_eV"]) / shipped["step_eV"]))
    for key in ("jsc_mA_per_cm2", "voc_V", "ff"):
        assert np.allclose(shipped[key][k : k + len(part[key])], part[key], atol=2e-6), key


def test_ceilings_are_registered_and_differentiable() -> None:
    g = torch.tensor([1.3, 1.6, 2.3], dtype=torch.float64, requires_grad=True)
    jsc = ceiling_function(sq.SQ_JSC)(g)
    jsc.sum().backward()
    assert g.grad is not None and (g.grad < 0).all()  # a wider gap absorbs fewer photons
    with pytest.raises(ConfigError, match="unknown ceiling function 'nope'"):
        ceiling_function("nope")


# --------------------------------------------------------------------------- configuration


def _device(targets: list[TargetSpec], upstream: bool = True) -> StageSpec:
    return StageSpec(name="device", dataset="d", upstream=upstream, categorical_inputs=["etl"], targets=targets)


def _film() -> StageSpec:
    return StageSpec(name="film", dataset="f", numeric_inputs=["x"], targets=[TargetSpec(column="gap")])


def _physics_targets() -> list[TargetSpec]:
    return [
        TargetSpec(column="pce", bounds="positive", product=Product(factors=["voc", "jsc", "ff"], scale=1.0)),
        TargetSpec(column="voc", bounds="positive", ceiling=Ceiling(function=sq.RADIATIVE_VOC, of="gap")),
        TargetSpec(column="jsc", bounds="positive", ceiling=Ceiling(function=sq.SQ_JSC, of="gap")),
        TargetSpec(column="ff", bounds="positive", ceiling=Ceiling(function=sq.SQ_FF, of="gap")),
    ]


def test_configuration_checks_products_and_ceilings() -> None:
    spec = ChainSpec(stages=[_film(), _device(_physics_targets())])
    assert spec.stages[1].head_targets == [1, 2, 3]
    assert ChainSpec.from_json(spec.to_json()) == spec  # ceilings and products are plain data
    with pytest.raises(ValueError, match="factor 'vok' must be another target"):
        _device([TargetSpec(column="pce", bounds="positive", product=Product(factors=["vok", "ff"])), TargetSpec(column="ff", bounds="fraction")])
    with pytest.raises(ValueError, match="factor 'x' must have bounds"):
        _device([TargetSpec(column="p", bounds="positive", product=Product(factors=["x", "y"])), TargetSpec(column="x"), TargetSpec(column="y", bounds="fraction")])
    with pytest.raises(ValueError, match="has upstream=false"):
        _device([TargetSpec(column="v", bounds="positive", ceiling=Ceiling(function="f", of="gap"))], upstream=False)
    with pytest.raises(ValueError, match="must have bounds 'positive'"):
        TargetSpec(column="v", ceiling=Ceiling(function="f", of="gap"))
    with pytest.raises(ValueError, match="needs 'bandgap', which stage 'film' does not predict"):
        ChainSpec(stages=[_film(), _device([TargetSpec(column="v", bounds="positive", ceiling=Ceiling(function="f", of="bandgap"))])])


# --------------------------------------------------------------------------- the heads


def _net(members: int = 3) -> StageNet:
    torch.manual_seed(0)
    spec = _device(_physics_targets())
    net = StageNet(spec, StageLayout(4, 0, (("a", "b"),)), members)
    mean = np.tile([15.0, 1.05, 21.0, 0.72], (members, 1))
    scale = np.tile([5.0, 0.1, 3.0, 0.08], (members, 1))
    return net.set_target_standardisation(mean, scale)


def test_heads_never_exceed_their_ceilings_and_pce_is_the_product() -> None:
    net = _net()
    assert len(net.heads) == 3  # PCE has no head of its own
    n = 4000
    gen = torch.Generator().manual_seed(1)
    h = torch.cat([torch.randn(3, n // 2, 3, generator=gen) * 50, torch.randn(3, n // 2, 3, generator=gen)], dim=1).double()
    gaps = torch.rand(3, n, generator=gen, dtype=torch.float64) * 4.0 + 0.3
    ceilings = upstream_ceilings(net.spec, ["gap"], gaps[..., None], pool=False)
    assert ceilings is not None
    with pytest.raises(ValueError, match="pass the upstream ceilings"):
        net.target_units(h)
    y = net.target_units(h, ceilings=ceilings)
    assert torch.isfinite(y).all()
    exact = sq_limit(gaps.numpy())
    assert (y[..., 1].numpy() <= exact["voc_V"]).all() and (y[..., 2].numpy() <= exact["jsc_mA_per_cm2"]).all()
    assert (y[..., 3] > 0).all() and (y[..., 3] <= 1).all() and (y[..., 3].numpy() <= exact["ff"]).all()
    assert torch.equal(y[..., 0], y[..., 1] * y[..., 2] * y[..., 3])
    assert (y[..., 0].numpy() <= exact["pce_percent"] * (1 + 1e-12)).all()  # below the SQ efficiency at the gap
    # inside the data a ceiling head is the plain head (the link is the identity there)
    h0 = torch.zeros(3, 1, 3, dtype=torch.float64)
    c16 = upstream_ceilings(net.spec, ["gap"], torch.full((3, 1, 1), 1.6, dtype=torch.float64), pool=False)
    y0 = net.target_units(h0, ceilings=c16)
    assert torch.allclose(y0[0, 0, 1:], torch.tensor([1.05, 21.0, 0.72], dtype=torch.float64), atol=1e-4)
    # pooled: every member gets the limit at the mean upstream prediction
    pooled = upstream_ceilings(net.spec, ["gap"], gaps[..., None], pool=True)
    assert pooled is not None and torch.equal(pooled[0], pooled[2])
    assert torch.allclose(pooled[0, :, 2], sq.shockley_queisser_jsc(gaps.mean(dim=0)))


def _logit_net(members: int = 2) -> StageNet:
    torch.manual_seed(0)
    targets = [t.model_copy(update={"ceiling": t.ceiling.model_copy(update={"link": "logit"})}) if t.ceiling else t for t in _physics_targets()]
    net = StageNet(_device(targets), StageLayout(4, 0, (("a", "b"),)), members)
    return net.set_target_standardisation(np.tile([15.0, 1.05, 21.0, 0.72], (members, 1)), np.tile([5.0, 0.1, 3.0, 0.08], (members, 1)))


def test_logit_link_heads_follow_their_limit_start_at_the_typical_fraction_and_never_exceed_it() -> None:
    """A ``logit`` ceiling link: limit x sigmoid(h + offset), the offset each member's mean logit of value / limit."""
    assert Ceiling(function="f", of="gap").link == "clamp"  # bundles written before the link existed read as before
    with pytest.raises(ValueError):
        Ceiling(function="f", of="gap", link="tanh")
    net = _logit_net()
    assert not hasattr(_net(), "fraction_offset") and "fraction_offset" in net.state_dict()  # saved with the weights
    # offsets from the training rows only (member 1 leaves out row 2, whose fraction is far from the others)
    gaps = torch.tensor([1.5, 1.6, 2.3], dtype=torch.float64)[None, :, None].expand(2, 3, 1)
    c = upstream_ceilings(net.spec, ["gap"], gaps, pool=False)
    assert c is not None
    frac = np.array([[np.nan, 0.8, 0.7, 0.75], [np.nan, 0.8, 0.7, 0.75], [np.nan, 0.2, 0.1, 0.3]])
    values = frac * c[0].numpy()
    rows = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.float32)
    net.set_fraction_offsets(values, c.numpy(), rows)
    off = net.get_buffer("fraction_offset").numpy()
    logit = np.log(frac / (1 - frac))
    np.testing.assert_allclose(off[0, 0, 1:], logit[:, 1:].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(off[1, 0, 1:], logit[:2, 1:].mean(axis=0), atol=1e-5)
    assert off[:, 0, 0].tolist() == [0.0, 0.0]  # the product target has no offset
    # h = 0: the member's typical fraction of the limit at every gap, even where the limit is far below the data's
    # values (a wide gap): no saturation at the limit, so the logit-space interval keeps its width there
    y0 = net.target_units(torch.zeros(2, 3, 3, dtype=torch.float64), ceilings=c).numpy()
    np.testing.assert_allclose(y0[..., 1:] / c.numpy()[..., 1:], np.broadcast_to(1 / (1 + np.exp(-off[:, :, 1:])), (2, 3, 3)), rtol=1e-6)
    assert (y0[..., 2] / c.numpy()[..., 2] < 0.8).all()
    # far outside the data: still inside (0, limit], PCE still the product, and still rising with h (no corner)
    n = 2000
    gen = torch.Generator().manual_seed(2)
    h = torch.randn(2, n, 3, generator=gen, dtype=torch.float64) * 30
    g = torch.rand(2, n, 1, generator=gen, dtype=torch.float64) * 3.0 + 0.8
    cg = upstream_ceilings(net.spec, ["gap"], g, pool=False)
    y = net.target_units(h, ceilings=cg)
    exact = sq_limit(g[..., 0].numpy())
    assert (y[..., 1:] > 0).all() and (y[..., 2].numpy() <= exact["jsc_mA_per_cm2"]).all() and (y[..., 1].numpy() <= exact["voc_V"]).all()
    assert torch.equal(y[..., 0], y[..., 1] * y[..., 2] * y[..., 3])
    hr = torch.full((2, 1, 3), 3.0, dtype=torch.float64, requires_grad=True)
    net.target_units(hr, ceilings=cg[:, :1])[..., 2].sum().backward()
    assert hr.grad is not None and (hr.grad[..., 1] > 0).all()
    # the offsets travel with the weights (a bundle reloads them)
    again = _logit_net()
    again.load_state_dict(net.state_dict(), strict=True)
    assert torch.equal(again.get_buffer("fraction_offset"), net.get_buffer("fraction_offset"))


def test_target_caps_multiply_through_products() -> None:
    spec = _device(_physics_targets())
    c = np.array([[1.0, 1.3, 25.0, 0.9]])
    caps = target_caps(spec, c, (1,))
    assert caps[0, 1:].tolist() == [1.3, 25.0, 0.9] and caps[0, 0] == pytest.approx(1.3 * 25.0 * 0.9)
    plain = StageSpec(name="s", dataset="d", numeric_inputs=["x"], targets=[TargetSpec(column="a"), TargetSpec(column="b", bounds="fraction")])
    assert target_caps(plain, None, (2,)).tolist() == [[np.inf, 1.0], [np.inf, 1.0]]


# --------------------------------------------------------------------------- intervals


def test_logit_intervals_stay_inside_the_cap_without_clipping() -> None:
    rng = np.random.default_rng(0)
    M, n, q = 5, 2000, 3000
    caps = rng.uniform(20.0, 30.0, size=(M, n))
    frac = np.clip(rng.beta(8, 2, size=n), 1e-3, 0.999)
    y = frac * caps[0]
    mu = np.clip(y[None] * rng.normal(1.0, 0.05, size=(M, n)), 0.01, None)
    mu = np.minimum(mu, caps * 0.999)
    fold = np.arange(n) % M
    cal = calibrate_target(fold, y, mu, caps=caps, normalised=True)
    assert cal.transform == "logit" and cal.normalised and cal.floor > 0
    q_caps = rng.uniform(0.5, 40.0, size=q)
    q_mu = q_caps[None] * rng.uniform(0.05, 0.9999, size=(M, q))
    lo, hi = conformal_interval(q_mu, cal, 0.9, q_caps)
    assert (lo >= 0).all() and (hi <= q_caps).all() and (lo <= hi).all()
    # extreme levels give the ends of the range: 0 and the cap, never beyond
    lo, hi = conformal_interval(q_mu, cal, 0.9999, q_caps)
    assert (lo >= 0).all() and (hi <= q_caps).all()


def test_normalised_intervals_are_wide_where_members_disagree_and_cover() -> None:
    rng = np.random.default_rng(1)
    M, n = 5, 4000

    def members_and_truth(size: int) -> tuple[np.ndarray, np.ndarray]:
        hard = rng.uniform(0.1, 2.0, size=size)  # the noise of a row grows with the members' disagreement
        truth = rng.normal(0, 1, size)
        mu = truth[None] + rng.normal(0, 1, (M, size)) * hard[None] * 0.5
        y = truth + rng.normal(0, 1, size) * hard
        return mu, y

    mu, y = members_and_truth(n)
    fold = np.arange(n) % M
    plain = calibrate_target(fold, y, mu)
    adaptive = calibrate_target(fold, y, mu, normalised=True)
    qmu, qy = members_and_truth(6000)
    spread = qmu.std(axis=0, ddof=1)
    for cal in (plain, adaptive):
        lo, hi = conformal_interval(qmu, cal, 0.9)
        cover = (qy >= lo) & (qy <= hi)
        assert 0.85 <= cover.mean() <= 0.95
    lo, hi = conformal_interval(qmu, adaptive, 0.9)
    w = hi - lo
    easy, hard = spread < np.quantile(spread, 0.2), spread > np.quantile(spread, 0.8)
    assert w[hard].mean() > 2 * w[easy].mean()
    assert 0.8 <= ((qy >= lo) & (qy <= hi))[easy].mean() and 0.8 <= ((qy >= lo) & (qy <= hi))[hard].mean()
    plo, phi = conformal_interval(qmu, plain, 0.9)
    wp = phi - plo  # plain CV+ widens only as far as the members' own predictions spread
    assert w[hard].mean() / w[easy].mean() > 1.5 * wp[hard].mean() / wp[easy].mean()


def test_calibration_json_keeps_the_new_fields_and_reads_old_files() -> None:
    cal = {"s": {"a": TargetCalibration(np.array([0, 1, 1]), np.array([0.2, 0.1, 0.3]), transform="logit", normalised=True, floor=0.05)}}
    back = calibration_from_json(calibration_to_json(cal))["s"]["a"]
    assert (back.transform, back.normalised, back.floor) == ("logit", True, 0.05)
    old = calibration_from_json({"method": "CV+", "stages": {"s": {"a": {"fold": [0, 1], "residual": [0.1, 0.2]}}}})["s"]["a"]
    assert (old.transform, old.normalised, old.floor) == ("identity", False, 0.0)
    with pytest.raises(ValueError, match="unknown interval transform"):
        TargetCalibration(np.array([0]), np.array([0.1]), transform="log")


def test_register_ceiling_adds_a_function() -> None:
    register_ceiling("test_double", lambda x: 2 * x)
    assert ceiling_function("test_double")(torch.tensor([1.5])).item() == 3.0


# --------------------------------------------------------------------------- with residual targets


def test_residual_and_ceiling_targets_coexist_in_one_stage_net() -> None:
    """One stage with a residual target (bounded correction), ceiling targets and a product: each keeps its own link."""
    from nestedae_core.model.config import ResidualSpec

    targets = [TargetSpec(column="shift")] + _physics_targets()
    spec = _device(targets).model_copy(update={"residual": [ResidualSpec(target="shift", upstream_target="gap", bound=0.2)]})
    spec = StageSpec.model_validate(spec.model_dump())
    chain = ChainSpec(stages=[_film(), spec])
    assert chain.stages[1].head_targets == [0, 2, 3, 4]
    torch.manual_seed(0)
    net = StageNet(spec, StageLayout(4, 0, (("a", "b"),)), 2)
    mean = np.tile([0.1, 15.0, 1.05, 21.0, 0.72], (2, 1))
    net.set_target_standardisation(mean, np.tile([0.05, 5.0, 0.1, 3.0, 0.08], (2, 1)))
    h = torch.randn(2, 50, 4, dtype=torch.float64) * 30  # far outside the data
    gaps = torch.full((2, 50, 1), 1.6, dtype=torch.float64)
    c = upstream_ceilings(spec, ["gap"], gaps, pool=False)
    y = net.target_units(h, ceilings=c).numpy()
    assert (np.abs(y[..., 0] - 0.1) <= 0.2 + 1e-12).all() and np.abs(y[..., 0] - 0.1).max() > 0.15  # the bounded correction
    lim = sq_limit(np.array([1.6]))
    assert (y[..., 2] <= lim["voc_V"][0] + 1e-9).all() and (y[..., 3] <= lim["jsc_mA_per_cm2"][0] + 1e-9).all()
    np.testing.assert_allclose(y[..., 1], y[..., 2] * y[..., 3] * y[..., 4], rtol=1e-12)
    with pytest.raises(ValueError, match="has residual targets, but the stage before"):
        ChainSpec(stages=[_film(), _device(_physics_targets()), StageSpec(
            name="module", dataset="m", upstream=True, numeric_inputs=["x"], targets=[TargetSpec(column="eff")],
            residual=[ResidualSpec(target="eff", upstream_target="pce", bound=1.0)])])


def test_measured_preset_keeps_the_film_residual_and_gets_the_device_physics() -> None:
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.vocabulary import DECOMPOSITION

    dft, film, device = preset("measured").stages
    assert DECOMPOSITION in dft.target_columns  # the DFT stage's decomposition-energy head
    assert [r.upstream_target for r in film.residual] == [dft.targets[1].column] and film.weight_column is not None
    assert [t.ceiling.of for t in device.targets if t.ceiling is not None] == [film.targets[0].column] * 3
    assert sum(t.product is not None for t in device.targets) == 1
    assert (dft.interval_scale, film.interval_scale, device.interval_scale) == ("disagreement", "distance", "distance")
    # Voc's interval in volts (its non-radiative loss scatters evenly in volts), the other device outcomes' in the logit
    assert {t.column: t.interval_space for t in device.targets if t.ceiling is not None} == {
        device.targets[1].column: "identity", device.targets[2].column: "auto", device.targets[3].column: "auto"}


def test_interval_space_is_checked_and_defaults_to_auto() -> None:
    from pydantic import ValidationError

    assert TargetSpec(column="y").interval_space == "auto"
    assert TargetSpec(column="y", interval_space="identity").interval_space == "identity"
    with pytest.raises(ValidationError, match="interval_space"):
        TargetSpec(column="y", interval_space="log")


def test_a_worker_that_imports_only_the_perovskite_layer_knows_the_ceilings() -> None:
    """A benchmark or job worker receives a measured chain's spec as data and imports the domain layer for its tables
    (not the presets, nor the store): the ceilings the device stage names must be registered by then. (A lazy
    import once left them unregistered: `benchmark accuracy` reported 'unknown ceiling function' for the measured
    chain in its worker processes.)"""
    import subprocess
    import sys

    code = ("import nestedae_core.perovskite\n"
            "from nestedae_core.model.ceilings import known_ceilings\n"
            "print(' '.join(sorted(known_ceilings())))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert {"radiative_voc", "shockley_queisser_jsc", "shockley_queisser_ff"} <= set(out), out
