"""The silicon model: published chips, yield and cost physics, limits, Monte Carlo."""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenfab import catalog
from tokenfab.constants import Draws
from tokenfab.silicon import DesignError, analyse, parse_design, resolve_design, to_chip
from tokenfab.silicon.cost import cost_at_volume, die_yield, dies_per_wafer
from tokenfab.silicon.fit import fit, leave_one_out, median_errors

BASE = {"node": "n5", "clock_ghz": 1.5, "cores": 64,
        "matrix": {"rows": 64, "cols": 64, "precisions": {"bf16": 1, "fp8": 2}},
        "memory": {"type": "HBM3E", "stacks": 4, "gb_per_stack": 24}}


def design(**changes):
    return parse_design({**BASE, **changes}, "test-chip")


def test_h100_like_lands_near_the_real_die_and_tdp_leave_one_out():
    rows = {r.id: r for r in leave_one_out()}
    h100 = rows["h100-like"]
    # fitted on the other published chips only: within 25% of 814 mm2 and 700 W
    assert abs(h100.area_pred / 814 - 1) < 0.25
    assert abs(h100.tdp_pred / 700 - 1) < 0.25


def test_leave_one_out_median_errors_meet_the_target():
    area, tdp = median_errors(leave_one_out())
    assert area <= 0.20 and tdp <= 0.20


def test_shipped_fit_is_the_current_fit():
    shipped = catalog.silicon_fit()
    for name, value in fit().items():
        assert shipped[name]["value"] == pytest.approx(value, rel=1e-3), name


def test_h100_like_chip_matches_the_catalog_h100():
    chip = to_chip(resolve_design("h100-like"))
    assert chip.peak_flops["bf16"] == pytest.approx(989.4e12, rel=0.01)
    assert chip.peak_flops["fp8"] == pytest.approx(1978.9e12, rel=0.01)
    assert chip.mem_bw == pytest.approx(3.35e12, rel=0.01)
    assert chip.scaleup_bw == pytest.approx(450e9) and chip.scaleup_kind == "nvswitch"
    assert chip.family == "nvidia-hopper"


@given(st.floats(10, 3000), st.floats(10, 3000), st.sampled_from(["negative-binomial", "murphy", "poisson"]))
def test_yield_decreases_with_area(a, b, model):
    small, big = sorted((a, b))
    assert die_yield(big, 0.1, model) <= die_yield(small, 0.1, model) + 1e-12
    assert 0 < die_yield(big, 0.1, model) <= 1


def test_clustering_helps_big_dies_and_dies_per_wafer_falls_with_area():
    assert die_yield(800, 0.1, "poisson") < die_yield(800, 0.1, "murphy") < die_yield(800, 0.1, "negative-binomial")
    d = Draws()
    assert dies_per_wafer(100, d) > dies_per_wafer(400, d) > dies_per_wafer(800, d) > 0


def test_more_volume_lowers_unit_cost_with_nre():
    r = analyse(design())
    costs = [cost_at_volume(r.unit.total, r.nre, v) for v in (1e3, 1e4, 1e5, 1e6)]
    assert all(a > b for a, b in zip(costs, costs[1:], strict=False))
    assert costs[-1] > r.unit.total


def test_spare_cores_raise_yield():
    plain = analyse(design(cores=60, spare_cores=4)).unit.dies[0].yield_
    none = analyse(design(cores=64)).unit.dies[0].yield_
    assert plain > none


def test_monte_carlo_is_fast_deterministic_and_brackets_nominal():
    dsg = resolve_design("inference-hbm")
    t0 = time.perf_counter()
    a = analyse(dsg, Draws(n=10_000, seed=7))
    assert time.perf_counter() - t0 < 2.0
    b = analyse(dsg, Draws(n=10_000, seed=7))
    assert np.array_equal(a.unit.total, b.unit.total) and np.array_equal(a.power.tdp, b.power.tdp)
    nominal = analyse(dsg)
    for x, nom in ((a.area, nominal.area), (a.unit.total, nominal.unit.total), (a.power.tdp, nominal.power.tdp)):
        p10, p90 = np.percentile(x, [10, 90])
        assert p10 < nom < p90


@pytest.mark.parametrize("changes, field", [
    ({"node": "n9"}, "node"),
    ({"sram": {"shared_mb": -5}}, "sram.shared_mb"),
    ({"matrix": {"rows": 8, "cols": 8, "precisions": {"fp5": 2}}}, "matrix.precisions"),
    ({"memory": {"type": "HBM9", "stacks": 1, "gb_per_stack": 1}}, "memory.type"),
    ({"clock_ghz": 0}, "clock_ghz"),
    ({"colour": "red"}, "colour"),
])
def test_bad_fields_name_themselves(changes, field):
    with pytest.raises(DesignError, match=field.replace(".", r"\.")):
        design(**changes)


def test_physical_limits_are_design_errors():
    with pytest.raises(DesignError, match="chiplets.count.*reticle"):
        analyse(design(cores=512))
    analyse(design(cores=512, chiplets={"count": 4, "d2d_tbps": 2}))
    with pytest.raises(DesignError, match="memory.stacks.*interposer"):
        analyse(design(memory={"type": "HBM3E", "stacks": 24, "gb_per_stack": 24}))
