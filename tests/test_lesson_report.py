"""The guided lesson's HTML export (nestedae_core.report.lesson_report)."""
from __future__ import annotations

import plotly.graph_objects as go
import pytest

from nestedae_core.errors import InputError
from nestedae_core.report import lesson_report

pytestmark = pytest.mark.unit


def test_lesson_report_has_each_question_figure_and_answer_in_order():
    steps = [(f"Question {k} <b>?", go.Figure(go.Bar(x=["x0"], y=[k])), f"answer {k}.") for k in range(1, 5)]
    text = lesson_report("A lesson", steps, subtitle="synthetic data")
    assert text.startswith("<!DOCTYPE html>") and "synthetic data" in text
    positions = [text.index(f"Step {k}. Question {k} &lt;b&gt;?") for k in range(1, 5)]
    assert positions == sorted(positions)
    assert all(f"Answer: answer {k}." in text for k in range(1, 5))
    assert text.count("class='figure'") == 4 and "<b>?" not in text  # user text escaped


def test_lesson_report_refuses_an_empty_lesson():
    with pytest.raises(InputError, match="at least one step"):
        lesson_report("A lesson", [])
