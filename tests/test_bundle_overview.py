"""A bundle described from its JSON files (what Home shows), without its weights, and without torch."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from nestedae_core.errors import BundleError
from nestedae_core.store import bundle_overview, load_bundle, shipped_bundle_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["measured-default", "paper-default"])
def test_the_overview_says_what_the_loaded_model_says(name: str) -> None:
    path = shipped_bundle_path(name)
    overview, model = bundle_overview(path), load_bundle(path)
    assert overview.spec == model.spec
    assert overview.summary == model.summary()
    assert overview.summary["name"] == name and overview.summary["ensemble members"] == str(model.members)


def test_the_overview_names_the_intervals_a_bundle_has(tmp_path) -> None:
    measured = bundle_overview(shipped_bundle_path("measured-default")).summary["prediction intervals"]
    paper = bundle_overview(shipped_bundle_path("paper-default")).summary["prediction intervals"]
    assert "CV+ conformal" in measured and paper.startswith("none")


def test_a_broken_bundle_is_one_bundle_error(tmp_path) -> None:
    with pytest.raises(BundleError):
        bundle_overview(tmp_path / "nothing-here")
    copy = tmp_path / "model"
    shutil.copytree(shipped_bundle_path("paper-default"), copy)
    (copy / "record.json").write_text(json.dumps([1, 2]))
    with pytest.raises(BundleError, match="record.json must hold an object"):
        bundle_overview(copy)


def test_describing_a_model_and_naming_its_quantities_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "from nestedae_core.api import (ChainSpec, bundle_overview, default_bundle_path, dataset_status, gap_name,\n"
        "    list_bundles, quantity_name, target_fidelity)\n"
        "from nestedae_core.model.ceilings import known_ceilings\n"
        "o = bundle_overview(default_bundle_path())\n"
        "assert o.spec.stages and list_bundles() and 'shockley_queisser_jsc' in known_ceilings()\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
