"""Constant ids read as names with their units, the same in the terminal and the report."""

from __future__ import annotations

import pytest

from tokenfab.labels import describe, readable


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
