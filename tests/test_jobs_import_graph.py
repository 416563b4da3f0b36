"""The job-kind registry (jobs/kinds.py) and the training kinds (jobs/training.py) do not import each other.

training registers its kinds in the registry, so it imports kinds; the registry
knows the built-in kinds' modules only by import path (imported on first use).
"""
from __future__ import annotations

import pytest

import ast
from pathlib import Path

import nestedae_core.jobs.kinds as kinds

pytestmark = pytest.mark.unit

JOBS = Path(kinds.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_registry_imports_no_kind_module():
    imported = _imported_modules(JOBS / "kinds.py")
    assert not any("training" in name for name in imported), imported


def test_the_builtin_kinds_are_found_by_module_path():
    assert "nestedae_core.jobs.training" in kinds.BUILTIN_KIND_MODULES
    assert {"train", "latent_size_scan", "latent_sweep"} <= set(kinds.kind_names())  # latent_sweep: its former name
    assert kinds.get_kind("train").module == "nestedae_core.jobs.training"
