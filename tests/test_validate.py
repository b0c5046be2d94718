"""Leave-one-hardware-out accuracy targets of the foundation issue (each hardware predicted by a refit
that never saw it)."""

import pytest

from tokenfab.validate import error_table, score_leave_one_hardware_out, summary

ENGINE = ("offline", "static", "prefill")


@pytest.fixture(scope="module")
def loho(measured_points):
    return score_leave_one_hardware_out(measured_points)


def test_loho_engine_scenarios_all_hardware(loho):
    n, med = summary(loho, ENGINE)
    assert n >= 120
    assert med <= 0.15


@pytest.mark.parametrize("hw", ["h100-sxm", "h200"])
def test_loho_engine_scenarios_flagship_gpus(loho, hw):
    n, med = summary(loho, ENGINE, hw)
    assert n >= 20
    assert med <= 0.10


@pytest.mark.parametrize("scenarios", [("gemm",), ("memcopy",), ("gemm", "memcopy", "allreduce")])
def test_loho_microbenchmarks(loho, scenarios):
    n, med = summary(loho, scenarios)
    assert n >= 8
    assert med <= 0.10


def test_error_table_has_overall_line(loho):
    rows = error_table(loho)
    assert rows[-1].scenario == "all" and rows[-1].count == len(loho)
    assert all(r.p90_abs >= r.median_abs for r in rows)
