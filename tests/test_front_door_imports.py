"""tools/front_door_imports.py: rewrites library imports to the front door, idempotently, and lists what it lacks."""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("front_door_imports", ROOT / "tools" / "front_door_imports.py")
assert _spec and _spec.loader
tool = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tool  # dataclasses look their module up
_spec.loader.exec_module(tool)

EXPORTS = {"preset": "perovskite.presets", "dataset_info": "data", "read_dataset": "data:load",
           "NestedAEError": "errors", "parse_formula": "chemistry.composition", "column_label": "vocabulary:label"}

PAGE = '''"""A page."""
import pandas as pd

from nestedae_core import data
from nestedae_core.errors import NestedAEError
from nestedae_core.perovskite.presets import preset as get_preset
from nestedae_core.vocabulary import label


def show(name):
    try:
        return data.load(name), data.dataset_info(name).title, label(name), get_preset("paper")
    except NestedAEError:
        return None


def later():
    from nestedae_core.chemistry.composition import parse_formula

    return parse_formula("MAPbI3")
'''


def test_a_page_is_rewritten_through_the_front_door_and_a_second_run_changes_nothing() -> None:
    out, report = tool.rewrite_source(PAGE, Path("pages/x.py"), EXPORTS, root=ROOT)
    ast.parse(out)
    assert "from nestedae_core.api import NestedAEError, column_label as label, dataset_info, preset as get_preset, read_dataset" in out
    assert "read_dataset(name), dataset_info(name).title, label(name)" in out  # data.load -> the front door's name
    assert "    from nestedae_core.api import parse_formula\n" in out  # a function's import stays in the function
    assert "from nestedae_core import data" not in out and "from nestedae_core.errors" not in out
    assert len(report.changed) == 5 and not report.missing and not report.by_hand
    again, report2 = tool.rewrite_source(out, Path("pages/x.py"), EXPORTS, root=ROOT)
    assert again == out and not report2.changed


def test_the_command_line_uses_a_relative_front_door() -> None:
    src = "from ..errors import NestedAEError\nfrom ._common import x\nfrom .. import data\n\nprint(data.dataset_info)\n"
    out, _ = tool.rewrite_source(src, Path("nestedae_core/cli/c.py"), EXPORTS, root=ROOT)
    assert out.splitlines()[:2] == ["from ..api import NestedAEError, dataset_info", "from ._common import x"]
    assert "print(dataset_info)" in out


def test_a_name_the_front_door_lacks_is_reported_and_the_import_left_alone() -> None:
    src = "from nestedae_core.store import models_dir, load_bundle\n"
    out, report = tool.rewrite_source(src, Path("app/m.py"), EXPORTS, root=ROOT)
    assert out == src
    assert report.missing == {"models_dir": "nestedae_core.store", "load_bundle": "nestedae_core.store"}
    out, _ = tool.rewrite_source(src, Path("app/m.py"), EXPORTS, add_missing=True, root=ROOT)
    assert out == "from nestedae_core.api import load_bundle, models_dir\n"


def test_a_clash_is_left_to_rewrite_by_hand() -> None:
    src = "from nestedae_core import data\n\n\ndef dataset_info(n):\n    return data.dataset_info(n)\n"
    out, report = tool.rewrite_source(src, Path("app/m.py"), EXPORTS, root=ROOT)
    assert out == src and report.by_hand and "clash" in report.by_hand[0]


def test_a_front_door_name_the_module_defines_again_is_reported() -> None:
    src = "from nestedae_core.api import dataset_info\n\n\ndef dataset_info(n):\n    return n\n"
    out, report = tool.rewrite_source(src, Path("app/m.py"), EXPORTS, root=ROOT)
    assert out == src and len(report.by_hand) == 1 and "`dataset_info` is imported from the front door" in report.by_hand[0]


def test_missing_names_are_added_to_the_front_door(tmp_path: Path) -> None:
    api = tmp_path / "api.py"
    api.write_text('_GROUPS: dict[str, dict[str, str]] = {\n    "errors": {\n        "NestedAEError": "errors",\n    },\n}\n')
    tool.add_exports({"models_dir": "nestedae_core.store", "NestedAEError": "nestedae_core.errors"}, api)
    tool.add_exports({"load_bundle": "nestedae_core.store"}, api)
    groups = tool.read_exports(api)
    assert groups["errors"] == {"NestedAEError": "errors"}
    assert groups[tool.UNSORTED] == {"models_dir": "store", "load_bundle": "store"}


def test_the_repository_needs_no_rewrite() -> None:
    exports = {n: s for g in tool.read_exports().values() for n, s in g.items()}
    pending = []
    for path in tool.target_files():
        rel = path.relative_to(ROOT)
        source = path.read_text(encoding="utf-8")
        out, report = tool.rewrite_source(source, rel, exports)
        if out != source or report.missing or report.by_hand:
            pending.append(str(rel))
    assert not pending, pending
