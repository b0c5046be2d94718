"""Leave-one-hardware-out accuracy targets of the foundation issue (each hardware predicted by a refit
that never saw it)."""

import pytest

from tokenfab.perf.params import UNCALIBRATED
from tokenfab.validate import ENGINE_SCENARIOS, error_table, score_leave_one_hardware_out, summary


@pytest.fixture(scope="module")
def loho(measured_points, shipped_fit_points):
    """As the shipped fit is made: every refit also uses our H100 run's fit half (bar the held-out hardware's)."""
    published = {p.id for p in measured_points}
    own = [p for p in shipped_fit_points if p.id not in published]
    assert own and all(p.hardware == "h100-sxm" for p in own)
    return score_leave_one_hardware_out(measured_points, fit_only=own)


def test_loho_scores_only_the_published_rows_and_never_fits_the_held_out_hardware(measured_points, monkeypatch):
    import tokenfab.validate as v
    seen = []
    monkeypatch.setattr(v, "fit_calibration", lambda pts, source: seen.append(pts) or UNCALIBRATED)
    scored_on = [p for p in measured_points if p.scenario == "memcopy"]
    extra = [p for p in measured_points if p.scenario == "gemm"]
    scored = v.score_leave_one_hardware_out(scored_on, fit_only=extra)
    assert {s.id for s in scored} == {p.id for p in scored_on}
    held = sorted({p.hardware for p in scored_on})
    for hw, pool in zip(held, seen, strict=True):
        assert all(p.hardware != hw for p in pool)
        assert {p.id for p in extra if p.hardware != hw} <= {p.id for p in pool}


def test_loho_engine_scenarios_all_hardware(loho):
    n, med = summary(loho, ENGINE_SCENARIOS)
    assert n >= 120
    assert med <= 0.15


@pytest.mark.parametrize("hw", ["h100-sxm", "h200"])
def test_loho_engine_scenarios_flagship_gpus(loho, hw):
    n, med = summary(loho, ENGINE_SCENARIOS, hw)
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
