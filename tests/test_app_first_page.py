"""The cold first page (Home) never waits for torch, nor for the explainers and their warm-up."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.app

ENTRY = Path(__file__).resolve().parents[1] / "streamlit_app.py"


def test_home_shows_the_model_without_loading_torch(tmp_path) -> None:
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(ENTRY)!r}, default_timeout=240)\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "items = dict(zip(at.table[-1].value['item'], at.table[-1].value['value']))\n"
        "assert items['preset'] == 'measured' and items['ensemble members'] == '5', items\n"
        "assert not at.get('plotly_chart') and not at.dataframe  # no plotly.js, no data grid on the first page\n"
        "assert sum(m.value.startswith('<svg') for m in at.markdown) == 1  # the chain diagram\n"
        "print('torch' in sys.modules, 'app.explain_state' in sys.modules, 'shap' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "NESTEDAE_MODELS_DIR": str(tmp_path / "models"),
           "NESTEDAE_JOB_STORE": str(tmp_path / "jobs.sqlite")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280, env=env,
                          cwd=ENTRY.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False False False"
