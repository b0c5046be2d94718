"""The report `make demo` writes (the embedded default problem, default search), opened in headless Chromium."""

from __future__ import annotations

from tokenfab.report.html import render
from tokenfab.search.problem import DesignProblem
from tokenfab.search.run import SearchOptions, design
from tokenfab.store import Store

PLOTS = ("pareto", "breakdown", "roofline", "tornado")


def test_the_demo_report_renders_without_a_script_or_console_error(tmp_path, rendered):
    summary = design(DesignProblem.load(None), Store(tmp_path / "demo.duckdb"), SearchOptions())
    dom = rendered(render(summary), PLOTS)
    assert "tokenfab design" in dom and summary["custom"]["label"] in dom
