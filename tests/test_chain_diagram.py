"""Home's chain diagram (app.chain_diagram): inline SVG naming every stage, input, latent and target, text escaped."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.chain_diagram import chain_layout, chain_svg
from nestedae_core import store
from nestedae_core.api import bundle_overview

pytestmark = pytest.mark.unit

NS = "{http://www.w3.org/2000/svg}"


def _spec(name: str):
    return bundle_overview(store.shipped_bundle_path(name)).spec


def _texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{NS}text")]


def test_layout_of_the_measured_default_names_every_stage_and_gap():
    rows = chain_layout(_spec("measured-default"))
    assert [r.title for r in rows] == ["Stage 1: dft", "Stage 2: film", "Stage 3: device"]
    assert rows[1].inputs[0] == "latents z₁ of dft (16)" and rows[2].inputs[0].startswith("latents z₂ of film")
    assert "band gap, DFT HSE06+SOC (eV)" in rows[0].targets and rows[1].targets == ("band gap, measured (eV)",)
    assert [r.latent_name for r in rows] == ["z₁", "z₂", "z₃"]


@pytest.mark.parametrize("bundle", ["measured-default", "paper-default"])
def test_svg_draws_every_row_of_the_layout(bundle):
    spec = _spec(bundle)
    svg = chain_svg(spec)
    root = ET.fromstring(svg)
    texts = " | ".join(_texts(svg))
    rows = chain_layout(spec)
    for row in rows:
        assert row.title in texts
        for line in row.inputs + row.targets + (f"Latents {row.latent_name}", f"({row.latent_dim})"):
            assert line in texts, line
    assert len(root.findall(f"{NS}rect")) == 4 * len(rows)  # inputs, encoder, latents, targets per stage
    assert texts.count("decoder: reconstruct the inputs") == len(rows)
    assert "\n" not in svg  # one line: markdown never ends the HTML block early


def test_a_stage_missing_from_the_spec_is_missing_from_the_drawing():
    spec = _spec("measured-default")
    two = spec.model_copy(update={"stages": spec.stages[:2]})
    texts = " | ".join(_texts(chain_svg(two)))
    assert "Stage 2: film" in texts and "Stage 3" not in texts and "PCE (%)" not in texts


def test_names_from_a_bundle_are_escaped():
    spec = _spec("paper-default")
    evil = '<script>alert(1)</script>"&'
    stage = spec.stages[0].model_copy(update={"name": evil, "dataset": "<img src=x onerror=alert(1)>"})
    svg = chain_svg(spec.model_copy(update={"stages": [stage, *spec.stages[1:]]}))
    root = ET.fromstring(svg)  # still well-formed
    assert not [e for e in root.iter() if e.tag.split("}")[-1] in {"script", "img"}]
    assert "<script>" not in svg and "<img" not in svg
    assert f"Stage 1: {evil}" in " | ".join(_texts(svg))
