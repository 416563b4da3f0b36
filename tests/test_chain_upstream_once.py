"""NestedAE.predict encodes each stage once and feeds its latents downstream.

Stage 0 used to be encoded again inside every later stage (three times in the
three-stage chain of the shipped ``measured-default`` bundle). The predictions
must be those of the old path: every stage predicted on its own, recomputing its
upstream latents from the raw inputs.
"""
from __future__ import annotations

import numpy as np
import pytest

import nestedae_core.store as store
from nestedae_core.query import query_frame
from nestedae_core.chemistry.composition import parse_formula

pytestmark = pytest.mark.unit

FORMULAS = ["MAPbI3", "FAPbI3", "CsPbBr3", "Cs0.05FA0.8MA0.15Pb(I0.85Br0.15)3", "MASnI3"]


@pytest.fixture(scope="module")
def model():
    return store.load_bundle(store.shipped_bundle_path("measured-default"))


@pytest.fixture(scope="module")
def frame(model):
    return query_frame(model, [parse_formula(f) for f in FORMULAS])


def _count_encodes(model, monkeypatch) -> list[int]:
    calls = [0] * len(model.nets)
    for i, net in enumerate(model.nets):
        real = net.encode

        def counted(x, _i=i, _real=real):
            calls[_i] += 1
            return _real(x)

        monkeypatch.setattr(net, "encode", counted)
    return calls


def test_each_stage_is_encoded_once_per_prediction(model, frame, monkeypatch):
    assert len(model.stage_names) == 3 and all(st.upstream for st in model.spec.stages[1:])
    calls = _count_encodes(model, monkeypatch)
    model.predict(frame)
    assert calls == [1, 1, 1]


def test_each_stage_predicts_its_targets_once_per_prediction(model, frame, monkeypatch):
    """The residual offsets and the ceilings take the upstream stages' predictions already made (the shipped chain:
    the film gap corrects the DFT gap, the device ceilings are at the film gap), not the upstream heads run again."""
    calls = [0] * len(model.nets)
    for i, net in enumerate(model.nets):
        real = net.predict_from_latent

        def counted(z, members=None, _i=i, _real=real):
            calls[_i] += 1
            return _real(z, members)

        monkeypatch.setattr(net, "predict_from_latent", counted)
    model.predict(frame)
    assert calls == [1, 1, 1]


def test_predictions_equal_the_stage_by_stage_path(model, frame):
    got = model.predict(frame)
    assert list(got) == model.stage_names
    for i, name in enumerate(model.stage_names):
        ref = model.predict_stage(i, frame)  # the old path: upstream latents recomputed from the raw inputs
        new = got[name]
        for field in ("members", "latents", "domain_distance", "in_domain", "lower", "upper"):
            a, b = getattr(new, field), getattr(ref, field)
            assert (a is None) == (b is None), field
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True, err_msg=f"{name}.{field}")
        if i:  # upstream heads run again on the given latents: the very numbers predict took from the upstream stages
            up, before = got[model.stage_names[i - 1]], got[model.stage_names[i - 2]] if i > 1 else None
            same = model.predict_stage(i, frame, upstream_latents=up.latents, offset_latents=None if before is None else before.latents)
            assert np.array_equal(same.members, new.members) and np.array_equal(same.lower, new.lower, equal_nan=True)
        assert new.domain_reason == ref.domain_reason
