"""The report's wording helpers: "never" for demands that never pay back, and its log axes."""

from __future__ import annotations

import math

import pytest

from tokenfab.report.figures import log_axis
from tokenfab.report.html import demand_words, years_words

INF = math.inf


@pytest.mark.parametrize(("d", "words"), [
    ([INF, INF, INF], "never, at any demand"),
    (None, "never, at any demand"),
    ([math.nan, None, INF], "never, at any demand"),
    ([4.62e13, INF, INF], "never in most draws (in the best tenth from 46.2 trillion output tokens/day)"),
    ([4.62e13, 8.67e14, INF], "from 867 trillion output tokens/day (46.2 trillion in P10, never in P90)"),
    ([1e10, 2e10, 3e10], "from 20 billion output tokens/day (P10-P90 10 billion to 30 billion)"),
])
def test_demand_words(d, words):
    assert demand_words(d) == words


def test_years_words():
    assert years_words([INF, INF, INF]) == "never repaid"
    assert years_words([1.0, 2.5, INF]) == "repaid in 2.5 years (1.0 in P10, never in P90)"
    assert "inf" not in years_words([1.0, INF, INF])


def test_log_axis_ticks_carry_full_values():
    short = log_axis([0.03, 0.4], "$,.2~f")
    assert short["tickvals"][:3] == [0.01, 0.02, 0.05] and "dtick" not in short   # 1-2-5 over two decades
    wide = log_axis([0.1, 1e4], ",~g")
    assert wide["tickvals"] == [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
