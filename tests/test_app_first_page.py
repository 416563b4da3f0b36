"""The cold first page (Home) never waits for torch; the explainers' warm-up starts in the background afterwards."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.app

ENTRY = Path(__file__).resolve().parents[1] / "streamlit_app.py"


def test_home_shows_the_model_without_loading_torch(tmp_path) -> None:
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "import app.background as background\n"
        "background.WARM_UP_DELAY_S = 120  # the background warm-up (which loads torch) must not start during the check\n"
        f"at = AppTest.from_file({str(ENTRY)!r}, default_timeout=240)\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "items = dict(zip(at.dataframe[-1].value['item'], at.dataframe[-1].value['value']))\n"
        "assert items['preset'] == 'measured' and items['ensemble members'] == '5', items\n"
        "assert len(at.get('plotly_chart')) == 1  # the chain diagram\n"
        "assert background._started().is_alive()  # the warm-up is waiting, in the background\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "NESTEDAE_MODELS_DIR": str(tmp_path / "models"),
           "NESTEDAE_JOB_STORE": str(tmp_path / "jobs.sqlite")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280, env=env,
                          cwd=ENTRY.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_the_background_warm_up_waits_then_starts_the_explainers_warm_up(monkeypatch) -> None:
    from app import background, explain_state

    called = threading.Event()
    monkeypatch.setattr(explain_state, "warm_up", called.set)
    background._warm_up(0.0)
    assert called.is_set()


def test_a_failing_warm_up_is_logged_never_raised(monkeypatch, caplog) -> None:
    from app import background, explain_state

    def boom() -> None:
        raise RuntimeError("no compiler")

    monkeypatch.setattr(explain_state, "warm_up", boom)
    background._warm_up(0.0)
    assert "background warm-up failed" in caplog.text
