"""TCO, $/Mtok and break-even on the same basis for a catalog GPU and a custom design."""

import numpy as np
import pytest

from tokenfab.constants import Draws
from tokenfab.economics import (
    DEFAULT_UTILISATION,
    SYSTEM_PARTS,
    EconomicsError,
    accelerator_price,
    annuity,
    break_even,
    chip_tdp,
    hourly_cost,
    implied_purchase_price,
    price_basis,
    price_range,
    rental_rate,
    serving,
    token_cost,
)
from tokenfab.network import chip_network
from tokenfab.silicon import resolve_chip


@pytest.fixture(scope="module")
def h100():
    return serving(resolve_chip("h100-sxm"), "llama-3.1-8b", 1024, 256)


@pytest.fixture(scope="module")
def custom():
    return serving(resolve_chip("inference-hbm"), "llama-3.1-8b", 1024, 256)


def test_annuity_repays_capital():
    assert annuity(0.0, 5) == pytest.approx(0.2)
    assert annuity(0.08, 5) > 0.2


def test_hourly_cost_grows_with_price_and_power():
    d = Draws()
    base = hourly_cost(20000, 700, 400, d).total
    assert hourly_cost(30000, 700, 400, d).total > base
    assert hourly_cost(20000, 700, 600, d).total > base


def test_h100_tco_band_and_breakdown(h100):
    tc = token_cost(h100, Draws(n=4000, seed=1))
    p10, p50, p90 = np.percentile(tc.hourly.total, [10, 50, 90])
    assert p10 < p50 < p90
    assert 1.0 < p50 < 3.0  # at-cost $/GPU-hour, near the low end of the rental market (1.7-4.9)
    assert tc.cloud_usd_per_mtok is not None
    parts = tc.hourly.accelerator + tc.hourly.server_network + tc.hourly.facility + tc.hourly.power
    assert np.allclose(parts + tc.hourly.maintenance, tc.hourly.total)
    assert np.all(tc.usd_per_mtok_in < tc.usd_per_mtok_out_only)


def test_break_even_volume_falls_as_gpus_get_dearer(h100, custom):
    volumes = [float(break_even(h100, custom, 1e12, Draws(), gpu_price_scale=s).volume) for s in (0.8, 1.0, 1.5, 3.0)]
    assert all(a >= b for a, b in zip(volumes, volumes[1:], strict=False))
    assert volumes[-1] < volumes[0]


def test_break_even_time_falls_with_demand(h100, custom):
    # with a software team to pay every year, a small demand never pays back (inf)
    years = [float(break_even(h100, custom, demand, Draws()).years) for demand in (1e12, 3e13, 1e14, 1e15)]
    assert years[0] == np.inf
    assert years[1] > years[2] > years[3] > 0


# ---- price bases: rivals priced, rack prices not charged twice, monotone in every price -----------------

RIVALS = ("tpu-v6e", "tpu-v7", "trainium2", "trainium3", "mtia-v2", "maia-100", "vr200", "mi455x")


class _Pinned(Draws):
    """Nominal constants, with some held at given values."""

    def __init__(self, **pins: float) -> None:
        super().__init__()
        self.pins = pins

    def __call__(self, name, *path):
        key = ".".join((name, *path))
        return self.pins[key] if key in self.pins else super().__call__(name, *path)


@pytest.mark.parametrize("hw_id", RIVALS)
def test_rivals_get_a_finite_tco_band(hw_id):
    tc = token_cost(serving(resolve_chip(hw_id), "llama-3.1-8b", 1024, 256), Draws(n=500, seed=3))
    p10, p50, p90 = np.percentile(tc.usd_per_mtok_out, [10, 50, 90])
    assert np.all(np.isfinite(tc.usd_per_mtok_out)) and 0 < p10 <= p50 <= p90
    assert p10 < p90  # uncertain inputs give a band, not a point
    assert tc.basis is not None


def test_price_bases_of_the_catalog():
    kinds = {h: price_basis(resolve_chip(h)).kind for h in ("h100-sxm", "tpu-v6e", "trainium2", "mtia-v2", "tpu-v7")}
    assert kinds == {"h100-sxm": "purchase", "tpu-v6e": "cloud-implied", "trainium2": "cloud-implied",
                     "mtia-v2": "internal-cost", "tpu-v7": "purchase"}
    assert price_basis(resolve_chip("inference-hbm")).kind == "design"
    assert price_basis(resolve_chip("h100-sxm")).includes == frozenset()
    assert price_basis(resolve_chip("tpu-v6e")).includes == frozenset(SYSTEM_PARTS)


@pytest.mark.parametrize("hw_id", ["gb200", "gb300", "vr200", "mi455x"])
def test_rack_priced_gpus_are_not_charged_a_server_again(hw_id):
    chip = resolve_chip(hw_id)
    assert {"server", "scaleup", "nic"} <= price_basis(chip).includes   # gb300: its record only says "rack price / 72"
    d = Draws()
    net = chip_network(chip, d)
    plain = hourly_cost(40_000, chip.tdp_w, 500, d, network=net)
    rack = hourly_cost(40_000, chip.tdp_w, 500, d, included=price_basis(chip).includes, network=net)
    per_year = float(annuity(d("cost_of_capital"), d("depreciation_years")))
    held_usd = float(d("server_cost_usd_per_slot")) + float(net.scaleup_usd) + float(net.nic_usd)
    assert float(plain.server_network - rack.server_network) == pytest.approx(held_usd * per_year / 8760)
    assert float(rack.server_network) > 0            # the scale-out fabric is outside the rack: still charged
    assert float(rack.total) < float(plain.total)
    assert float(rack.power) == pytest.approx(float(plain.power))   # its switches draw power whoever paid for them


def test_unknown_included_part_is_refused():
    with pytest.raises(EconomicsError, match="allowed server, network"):
        hourly_cost(1.0, 700, 400, Draws(), included=("rack",))


def test_a_higher_price_or_power_never_lowers_the_hourly_cost():
    d = Draws()
    prices = np.linspace(0.0, 150_000.0, 31)
    for included in ((), ("server",), SYSTEM_PARTS):
        total = hourly_cost(prices, 1000, 600, d, included=included).total
        assert np.all(np.diff(total) > 0)
        tdps = np.linspace(100.0, 2500.0, 25)
        assert np.all(np.diff(hourly_cost(30_000, tdps, 600, d, included=included).total) >= 0)
        busy = np.linspace(50.0, 1000.0, 20)
        assert np.all(np.diff(hourly_cost(30_000, 1000, busy, d, included=included).total) > 0)


def test_implied_price_reproduces_the_clouds_cost_and_is_monotone():
    chip = resolve_chip("tpu-v6e")
    d = Draws()
    rate = float(rental_rate(chip, d))
    assert rate == pytest.approx(1.22)                 # the 3-year committed rate
    price = float(implied_purchase_price(chip, d))
    tdp = chip_tdp(chip, d)
    cost = hourly_cost(price, tdp, tdp, d, DEFAULT_UTILISATION, SYSTEM_PARTS, chip_network(chip, d)).total
    assert float(cost) == pytest.approx(rate * (1 - float(d("cloud_margin"))))
    rates = np.linspace(0.2, 6.0, 30)
    implied = implied_purchase_price(chip, d, rates)
    assert np.all(np.diff(implied) >= 0) and implied[-1] > implied[0] and np.all(implied >= 0)
    margins = [float(implied_purchase_price(chip, _Pinned(cloud_margin=m))) for m in (0.1, 0.25, 0.4)]
    assert margins[0] > margins[1] > margins[2] > 0


def test_a_higher_rental_rate_never_lowers_the_tco_of_a_rented_chip():
    chip = resolve_chip("trainium2")
    d = Draws()
    tdp = chip_tdp(chip, d)
    rates = np.linspace(0.5, 8.0, 16)
    total = hourly_cost(implied_purchase_price(chip, d, rates), tdp, 0.6 * tdp, d, 0.5, SYSTEM_PARTS).total
    assert np.all(np.diff(total) >= 0) and total[-1] > total[0]


def test_commitment_discount_and_margin_move_the_price_the_right_way():
    chip = resolve_chip("trainium2")                  # no published committed rate: on-demand less the discount
    deep, shallow = (float(implied_purchase_price(chip, _Pinned(cloud_commit_discount_3yr=x))) for x in (0.55, 0.2))
    assert shallow > deep > 0


def test_internal_chips_are_priced_like_their_reference_design():
    from tokenfab.silicon import resolve_design
    from tokenfab.silicon.build import analyse
    chip = resolve_chip("mtia-v2")
    ref = analyse(resolve_design("ref-mtia-v2"), Draws(), 100_000, check=False).unit_cost_with_nre
    assert float(accelerator_price(chip, Draws())) == pytest.approx(float(ref))
    volumes = [float(accelerator_price(chip, Draws(), v)) for v in (1e4, 1e5, 1e6)]
    assert volumes[0] > volumes[1] > volumes[2]


def test_price_range_brackets_the_nominal_price():
    for hw_id in ("tpu-v5e", "inferentia2", "maia-100", "h100-sxm", "vr200"):
        r = price_range(resolve_chip(hw_id))
        assert 0 < r.low <= r.value <= r.high


def test_a_dearer_hbm_never_makes_a_design_cheaper():
    from tokenfab.silicon import resolve_design
    from tokenfab.silicon.build import analyse
    design = resolve_design("inference-hbm")
    costs = [float(analyse(design, _Pinned(**{"hbm_price_usd_per_gb.HBM3E": p})).unit.total) for p in (8.3, 10.3, 15.1)]
    assert costs[0] < costs[1] < costs[2]
    # 8 x 36 GiB of HBM3E at the 2025 supply price ($10.3/GB), not the retired $15/GB
    assert float(analyse(design, Draws()).unit.memory) == pytest.approx(8 * 36 * 2**30 / 1e9 * 10.3, rel=0.02)


def test_tdp_range_is_drawn_for_estimated_power():
    chip = resolve_chip("tpu-v7")
    draws = np.asarray(chip_tdp(chip, Draws(n=2000, seed=1)))
    assert draws.min() >= 700 and draws.max() <= 1085 and draws.std() > 0
    assert chip_tdp(resolve_chip("h100-sxm"), Draws(n=10)) == 700  # a published TDP is taken as given


@pytest.mark.parametrize("hw_id", RIVALS)
def test_tco_json_gives_a_finite_band_for_every_rival(hw_id):
    import json

    from typer.testing import CliRunner

    from tokenfab.cli import app
    r = CliRunner().invoke(app, ["tco", "--hardware", hw_id, "--model", "llama-3.1-8b", "--input-len", "1024",
                                 "--output-len", "256", "--samples", "500", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    band_ = out["usd_per_mtok_out"]
    assert all(np.isfinite(v) for v in band_.values()) and 0 < band_["p10"] <= band_["p50"] <= band_["p90"]
    assert out["hardware"] == hw_id and out["price_basis"]["kind"] in ("purchase", "cloud-implied", "internal-cost")


def test_a_higher_catalog_price_never_lowers_usd_per_mtok(h100):
    from dataclasses import replace

    from tokenfab.hardware import Range
    costs = []
    for price in (15_000.0, 27_500.0, 40_000.0, 80_000.0):
        chip = replace(h100.chip, price_usd=Range(price, price, price))
        srv = replace(h100, option=replace(h100.option, chip=chip))
        costs.append(float(token_cost(srv, Draws()).usd_per_mtok_out))
    assert costs == sorted(costs) and costs[0] < costs[-1]


# ---- a custom chip bought through a design partner: monotone in every cost, and time ---------------------------


def test_partner_margin_never_makes_the_chip_cheaper():
    from tokenfab.economics import CustomTerms, partner_unit_price
    prices = [float(partner_unit_price(10_000.0, _Pinned(partner_gross_margin=m))) for m in (0.0, 0.2, 0.3, 0.5, 0.67)]
    assert prices == sorted(prices) and prices[0] == pytest.approx(10_000.0)
    assert prices[3] == pytest.approx(20_000.0)                   # 50% gross margin: cost x (1 + 1)
    inhouse = partner_unit_price(10_000.0, _Pinned(partner_gross_margin=0.6), CustomTerms(partner="in-house"))
    assert float(inhouse) == pytest.approx(10_000.0)


def test_software_cost_slip_and_generation_move_the_buyers_nre_the_right_way():
    from tokenfab.economics import CustomTerms, buyer_nre
    hw, masks = 555e6, 30e6
    sw = [float(buyer_nre(hw, masks, _Pinned(software_nre_usd=x))) for x in (2e8, 5e8, 1e9)]
    assert sw == sorted(sw) and sw[0] < sw[-1]
    share = [float(buyer_nre(hw, masks, _Pinned(partner_nre_share=x))) for x in (0.1, 0.3, 0.5)]
    assert share == sorted(share, reverse=True)                   # the partner funding more never costs the buyer more
    slips = [float(buyer_nre(hw, masks, Draws(), CustomTerms(slip_months=m))) for m in (0, 3, 6, 12)]
    assert slips == sorted(slips) and slips[0] < slips[1]
    gens = [float(buyer_nre(hw, masks, Draws(), CustomTerms(generation=g))) for g in (1, 2, 3)]
    assert gens == sorted(gens, reverse=True) and gens[2] < gens[0]
    inhouse = float(buyer_nre(hw, masks, Draws(), CustomTerms(partner="in-house")))
    assert inhouse > sw[1] == pytest.approx(hw * 0.7 + 5e8)


def test_software_maturity_is_below_one_and_rises_over_generations():
    from tokenfab.economics import software_maturity
    gens = [float(software_maturity(Draws(), g)) for g in (1, 2, 3, 5)]
    assert gens[0] == pytest.approx(0.75) and all(0 < g < 1 for g in gens) and gens == sorted(gens)
    firsts = [float(software_maturity(_Pinned(software_maturity_first_gen=x), 2)) for x in (0.5, 0.75, 0.9)]
    assert firsts == sorted(firsts)


def test_break_even_prices_the_custom_chip_as_it_is_bought(h100, custom):
    """More partner margin, more software run cost or a less mature stack never bring the break-even nearer; buying
    in-house at cost with no software (the old basis) is the cheapest custom chip."""
    from tokenfab.economics import CustomTerms

    def volume(d, terms=None):
        return float(break_even(h100, custom, 1e12, d, terms=terms).volume)

    margins = [volume(_Pinned(partner_gross_margin=m)) for m in (0.3, 0.45, 0.6)]
    assert margins == sorted(margins) and margins[0] < margins[-1]
    runs = [volume(_Pinned(software_run_usd_per_year=x)) for x in (6e7, 1.5e8, 4e8)]
    assert runs == sorted(runs) and runs[0] < runs[-1]
    mature = [volume(_Pinned(software_maturity_first_gen=x)) for x in (0.5, 0.75, 0.95)]
    assert mature == sorted(mature, reverse=True)
    be = break_even(h100, custom, 1e12, Draws())
    bare = break_even(h100, custom, 1e12, _Pinned(software_nre_usd=0.0, software_run_usd_per_year=0.0,
                                                  software_maturity_first_gen=1.0), terms=CustomTerms("in-house"))
    assert float(bare.volume) < float(be.volume)
    assert float(np.median(bare.custom.usd_per_mtok_out)) < float(np.median(be.custom.usd_per_mtok_out))
    assert bare.customs_needed < be.customs_needed                  # maturity 0.75: a third more chips


def test_catalog_prices_decline_with_time_and_the_rate():
    from tokenfab.economics import price_decline
    years = np.linspace(0.0, 4.0, 9)
    f = price_decline(Draws(), years)
    assert f[0] == 1.0 and np.all(np.diff(f) < 0)
    rates = [float(price_decline(_Pinned(accelerator_price_decline_per_year=r), 2.0)) for r in (0.0, 0.15, 0.285)]
    assert rates == sorted(rates, reverse=True) and rates[0] == 1.0
    assert float(price_decline(Draws(), -1.0)) == 1.0           # no rise before the price date


def test_custom_terms_refuse_bad_values():
    from tokenfab.economics import CustomTerms
    for kwargs, needle in (({"partner": "tsmc"}, "custom.partner"), ({"generation": 0}, "custom.generation"),
                           ({"slip_months": -1}, "slip")):
        with pytest.raises(EconomicsError, match=needle):
            CustomTerms(**kwargs)


def test_new_custom_chip_constants_are_sourced_and_ranged():
    from tokenfab import catalog
    from tokenfab.constants import get
    for name in ("partner_gross_margin", "partner_nre_share", "software_nre_usd", "software_run_usd_per_year",
                 "software_maturity_first_gen", "software_maturity_gap_closed_per_generation",
                 "nre_reuse_per_generation", "tapeout_to_delivery_months", "accelerator_price_decline_per_year",
                 "supply_shock_price_premium", "tapeout_slip_months"):
        rec = catalog.constants()[name]
        u = get(name)
        assert rec["source"].startswith("http") and rec["note"], name
        assert u.low < u.value < u.high or (u.low == 0 < u.value < u.high), name


# ---- the network as a priced system (network.py) in the TCO ------------------------------------------------------


def test_gb200_nvl72_is_not_charged_its_nvlink_switches_twice():
    d = Draws()
    chip = resolve_chip("gb200")
    basis = price_basis(chip)
    net = chip_network(chip, d, 1024)
    assert net.scaleup.kind == "nvlink" and net.scaleup.domain == 72 and float(net.scaleup_usd) > 0
    assert {"scaleup", "nic"} <= basis.includes
    hr = hourly_cost(40_000, chip.tdp_w, 800, d, DEFAULT_UTILISATION, basis.includes, net)
    per_year = float(annuity(d("cost_of_capital"), d("depreciation_years")))
    charged = float(hr.server_network) * 8760 / per_year
    assert charged == pytest.approx(float(net.scaleout_usd + net.pod_usd))   # only the fabric outside the rack
    assert float(net.pod_usd) == 0.0                                          # NVL72: the whole domain in the rack
    h100 = chip_network(resolve_chip("h100-sxm"), d, 1024)                   # a GPU price: its NVSwitches are charged
    assert price_basis(resolve_chip("h100-sxm")).includes == frozenset()
    assert float(h100.usd(())) == pytest.approx(float(h100.scaleup_usd + h100.nic_usd + h100.scaleout_usd))
    assert float(h100.scaleup_usd) == pytest.approx(0.5 * float(d("network_nvlink_switch_usd", "nvlink4")))


def test_tpu_v7_rack_price_holds_its_ici_but_not_the_optical_pod():
    d = Draws()
    chip = resolve_chip("tpu-v7")
    net = chip_network(chip, d)
    held = price_basis(chip).includes
    assert "scaleup" in held and "pod" not in held and "network" not in held
    x = float(d("network_transceiver_usd", "800g"))     # 9.6 Tb/s ICI over 6 links: 800G links
    per_end = x + float(d("network_fibre_usd_per_link")) + float(d("network_ocs_usd_per_port"))
    assert float(net.pod_usd) == pytest.approx(1.5 * per_end)   # 1.5 optical link ends per chip of a 4x4x4 cube
    assert float(d("network_ici_optics_per_chip_check")) == 1.5
    assert float(net.usd(held)) == pytest.approx(float(net.pod_usd + net.scaleout_usd))


def test_token_cost_grows_with_the_cluster_the_network_serves(h100):
    d = Draws()
    costs = [float(token_cost(h100, d, cluster=n).usd_per_mtok_out) for n in (8, 1024, 100_000)]
    assert costs[0] < costs[1] < costs[2]
    watts = [float(token_cost(h100, d, cluster=n).hourly.network.w) for n in (8, 1024, 100_000)]
    assert watts[0] < watts[1] < watts[2]
    with pytest.raises(EconomicsError, match="cluster"):
        token_cost(h100, d, cluster=0)
