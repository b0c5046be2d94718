"""The silicon model: published chips, yield and cost physics, limits, Monte Carlo."""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenfab import catalog
from tokenfab.constants import Draws
from tokenfab.silicon import DesignError, analyse, parse_design, resolve_design, to_chip
from tokenfab.silicon.area import die_areas, total_area
from tokenfab.silicon.cost import cost_at_volume, die_yield, dies_per_wafer
from tokenfab.silicon.fit import _terms, fit, leave_one_out, median_errors, write_fit
from tokenfab.silicon.power import mac_pj

BASE = {"node": "n5", "clock_ghz": 1.5, "cores": 64,
        "matrix": {"rows": 64, "cols": 64, "precisions": {"bf16": 1, "fp8": 2}},
        "memory": {"type": "HBM3E", "stacks": 4, "gb_per_stack": 24}}


def design(**changes):
    return parse_design({**BASE, **changes}, "test-chip")


@pytest.fixture(scope="module")
def loo():
    """`tokenfab silicon --check`: each published chip predicted with figures fitted on the others."""
    return leave_one_out()


def test_h100_like_lands_near_the_real_die_and_tdp_leave_one_out(loo):
    h100 = {r.id: r for r in loo}["h100-like"]
    # fitted on the other published chips only: within 25% of 814 mm2 and 700 W
    assert abs(h100.area_pred / 814 - 1) < 0.25
    assert abs(h100.tdp_pred / 700 - 1) < 0.25


def test_leave_one_out_area_meets_the_target(loo):
    # issue 13: median |error| <= 12%, no chip worse than 40% (MI300X was -44%, Groq +103% before the base-die
    # footprint, the operand ports of matrix arrays and the realised 16 nm logic density)
    area, _ = median_errors(loo)
    assert area <= 0.12
    assert max(abs(r.area_err) for r in loo if r.area_err is not None) <= 0.40
    assert sum(r.area_err is not None for r in loo) >= 8


def test_leave_one_out_tdp_meets_the_target(loo):
    # issue 13: median |error| <= 12%, no chip worse than 40% (MTIA v2 was +43% before TDP scopes: its 90 W is a
    # bare package's, the module TDPs carry the regulator loss)
    _, tdp = median_errors(loo)
    assert tdp <= 0.12
    assert max(abs(r.tdp_err) for r in loo if r.tdp_err is not None) <= 0.40


def test_package_tdp_leaves_out_regulator_loss_and_board_dram():
    mtia = resolve_design("ref-mtia-v2")
    assert mtia.reference.tdp_scope == "package"
    as_module = _terms(mtia.model_copy(update={"reference": mtia.reference.model_copy(
        update={"tdp_scope": "module"})}))
    package = _terms(mtia)
    assert package.delivery == 1.0 and as_module.delivery > 1.05
    assert package.fixed_w < as_module.fixed_w            # LPDDR5 devices sit on the board
    # a design's own TDP is a module's: the regulator loss is one of its parts
    report = analyse(resolve_design("h100-like"))
    assert float(report.power.delivery) == pytest.approx(
        float(report.power.tdp - report.power.delivery) * (1 / Draws()("voltage_regulator_efficiency") - 1), rel=1e-6)


def test_shipped_fit_is_the_current_fit():
    shipped = catalog.silicon_fit()
    for name, value in fit().items():
        assert shipped[name]["value"] == pytest.approx(value, rel=1e-3), name


def test_refit_reproduces_the_shipped_fit_file(tmp_path):
    """`tokenfab silicon --refit` on the shipped designs and constants writes the shipped silicon_fit.json."""
    shipped = catalog.silicon_fit()
    written = write_fit(tmp_path / "silicon_fit.json")
    assert written["provenance"] == shipped["provenance"]
    for name, entry in written.items():
        if name == "provenance":
            continue
        for key, value in entry.items():
            assert shipped[name][key] == pytest.approx(value, rel=1e-4, abs=1e-6), f"{name}.{key}"


def test_stacked_base_dies_cover_the_dies_bonded_on_them():
    mi300x = resolve_design("ref-mi300x")
    xcd, iod = die_areas(mi300x, Draws())
    # two XCDs sit on each IOD: the IOD is at least their footprint, plus its HBM/SerDes/IOD-link PHYs at the edge
    assert iod.total >= 2 * xcd.total + (iod.phy + iod.d2d) / (1 - iod.uncore) - 1e-9
    assert xcd.d2d == 0  # the bonded face needs no PHY
    side = mi300x.model_copy(update={"io_die": mi300x.io_die.model_copy(update={"stacked": False})})
    assert float(total_area(die_areas(side, Draws()))) < float(total_area(die_areas(mi300x, Draws())))
    # the comparison is like with like: 8 x ~115 mm2 XCD + 4 x ~370 mm2 IOD = 2,400 mm2 of silicon
    assert mi300x.reference.die_area_mm2 == 2400


def test_operand_ports_make_large_arrays_denser():
    """The same MACs as 64 GPU-like 16x16 arrays per core cost more area than as one 128x128 systolic array."""
    small = design(cores=64, matrix={"units_per_core": 64, "rows": 16, "cols": 16, "precisions": {"bf16": 1}})
    large = design(cores=64, matrix={"units_per_core": 1, "rows": 128, "cols": 128, "precisions": {"bf16": 1}})
    a_small, a_large = die_areas(small, Draws())[0], die_areas(large, Draws())[0]
    assert a_small.bare_logic == pytest.approx(a_large.bare_logic)
    assert a_small.logic > 2 * a_large.logic


def test_tdp_load_runs_at_the_published_sustained_clock():
    mi300x = resolve_design("ref-mi300x")
    assert mi300x.reference.tdp_clock_ghz == pytest.approx(1.207)
    at_peak = _terms(mi300x.model_copy(update={"reference": mi300x.reference.model_copy(
        update={"tdp_clock_ghz": None})}))
    assert _terms(mi300x).compute_w == pytest.approx(at_peak.compute_w * 1.207 / 2.1)


def test_tf32_mac_costs_an_fp16_mac_not_an_fp32_one():
    d = Draws()
    assert mac_pj(d, "tf32", "n7") == pytest.approx(mac_pj(d, "bf16", "n7") * d("tf32_mac_energy_vs_bf16"))
    assert mac_pj(d, "tf32", "n7") < 0.5 * mac_pj(d, "fp32", "n7")


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
