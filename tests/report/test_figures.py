"""The report's wording helpers: constant ids as names with units, "never" for demands that never pay back."""

from __future__ import annotations

import math

import pytest

from tokenfab.report.figures import describe, log_axis, readable
from tokenfab.report.html import demand_words, years_words

INF = math.inf


@pytest.mark.parametrize(("cid", "name", "unit"), [
    ("mask_set_usd.n3", "mask set, N3", "$"),
    ("software_run_usd_per_year", "software run", "$/yr"),
    ("price:tpu-v7", "price of tpu-v7", "$"),
    ("facility_usd_per_w", "facility", "$/W"),
    ("network_ocs_w_per_port", "network OCS", "W/port"),
    ("depreciation_years", "depreciation", "years"),
    ("hbm_stack_footprint_mm2", "HBM stack footprint", "mm²"),
    ("maintenance_share_per_year", "maintenance share", "fraction/yr"),
    ("partner_nre_share", "partner NRE share", "fraction"),
    ("network_scaleup_switch_w.tomahawk_ultra", "network scaleup switch, tomahawk ultra", "W"),
    ("SLO chat: TTFT 0.45 s", "SLO chat: TTFT 0.45 s", ""),
])
def test_describe(cid, name, unit):
    assert describe(cid) == (name, unit)
    assert "_" not in readable(cid)


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
