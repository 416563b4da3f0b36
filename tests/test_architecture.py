"""The layers hold: ``lint-imports`` checks the import-linter contracts of ``pyproject.toml``.

cli > sweep, benchmark > front door (estimator, predict, batch, report, jobs, store) >
perovskite (perovskite, query, data, chemistry, vocabulary) > explain > train > model >
vocabulary-free base (errors, io_safe, threads, csv_safe); the library never imports the
dashboard or Streamlit, and the nested-autoencoder core knows no chemistry.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -r requirements-dev.txt)")
    return [exe]


def test_import_contracts_are_kept() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([*_lint_imports(), "--config", "pyproject.toml", "--no-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout

