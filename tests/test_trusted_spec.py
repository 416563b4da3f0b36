"""A shipped bundle's configuration is built without validation (the validators are built on first use); the spec is
the validated one, and any other bundle is still validated."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from nestedae_core.errors import BundleError
from nestedae_core.model.config import ChainSpec, trusted_chain_spec
from nestedae_core.store.layout import SHIPPED_BUNDLE_NAMES, shipped_bundle_path
from nestedae_core.store.layout import is_shipped_bundle
from nestedae_core.store.loading import _read_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", SHIPPED_BUNDLE_NAMES)
def test_a_shipped_spec_built_without_validation_is_the_validated_one(name: str) -> None:
    spec = json.loads((shipped_bundle_path(name) / "config.json").read_text())["spec"]
    fast, checked = trusted_chain_spec(spec), ChainSpec.model_validate(spec)
    assert fast == checked and fast.model_dump_json() == checked.model_dump_json()
    assert fast.model_fields_set == checked.model_fields_set
    assert [s.model_fields_set for s in fast.stages] == [s.model_fields_set for s in checked.stages]
    assert [type(t) for s in fast.stages for t in s.targets] == [type(t) for s in checked.stages for t in s.targets]


def test_an_unknown_key_is_refused_by_the_fast_path() -> None:
    spec = json.loads((shipped_bundle_path("paper-default") / "config.json").read_text())["spec"]
    spec["stages"][0]["not_a_field"] = 1
    with pytest.raises(KeyError, match="not_a_field"):
        trusted_chain_spec(spec)


def test_only_shipped_bundles_skip_validation(tmp_path) -> None:
    src = shipped_bundle_path("paper-default")
    assert is_shipped_bundle(src)
    assert not is_shipped_bundle(src.parent / "mine")  # a user's bundle saved beside the shipped ones is validated
    copy = tmp_path / "paper-default"
    shutil.copytree(src, copy)
    assert not is_shipped_bundle(copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["spec"]["folds"] = 1  # below the minimum of 2: validation refuses it
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="invalid configuration"):
        _read_spec(copy, trusted=is_shipped_bundle(copy))


def test_a_cold_predict_builds_no_validator() -> None:
    probe = ("import sys, io, contextlib\nfrom nestedae_core.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['predict', 'MAPbI3']) == 0\n"
             "from nestedae_core.model.config import ChainSpec, StageSpec\n"
             "print(ChainSpec.__pydantic_complete__, StageSpec.__pydantic_complete__)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["False", "False"]
    ChainSpec.model_validate(json.loads((shipped_bundle_path("paper-default") / "config.json").read_text())["spec"])
    assert ChainSpec.__pydantic_complete__  # built on first validation
