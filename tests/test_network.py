"""The network as a priced system: fat-tree tiers, scale-out by cluster and port speed, scale-up by domain and links."""

import numpy as np
import pytest

from tokenfab.constants import Draws, get, keys
from tokenfab.network import (
    ScaleUp,
    chip_network,
    fat_tree_capacity,
    fat_tree_tiers,
    nic_ports,
    scaleout,
    scaleup_cost,
    scaleup_of_design,
)
from tokenfab.silicon import resolve_chip

SIZES = np.unique(np.round(np.logspace(0, 6.3, 300)))


def test_tiers_of_a_fat_tree_for_a_known_radix():
    assert fat_tree_capacity(1, 64) == 64
    assert fat_tree_capacity(2, 64) == 2048            # radix 64, two tiers: 2,048 endpoints
    assert fat_tree_capacity(3, 64) == 65_536
    assert fat_tree_tiers(64, 64) == 1 and fat_tree_tiers(65, 64) == 2
    assert fat_tree_tiers(2048, 64) == 2 and fat_tree_tiers(2049, 64) == 3
    assert fat_tree_tiers(8192, 128) == 2 and fat_tree_tiers(524_288, 128) == 3 and fat_tree_tiers(524_289, 128) == 4
    assert list(fat_tree_tiers(np.array([1, 64, 65, 2048, 2049]), 64)) == [1, 2 - 1, 2, 2, 3]


@pytest.mark.parametrize("gbps", [100, 400, 800, 1600, 2400])
def test_scaleout_cost_per_chip_never_falls_as_the_cluster_grows(gbps):
    d = Draws()
    out = scaleout(SIZES, gbps, d)
    assert np.all(np.diff(out.usd) >= 0) and np.all(np.diff(out.w) >= 0) and np.all(np.diff(out.tiers) >= 0)
    small, mid, big = (float(scaleout(n, gbps, d).usd) for n in (8, 1024, 100_000))
    assert small <= mid < big                              # more tiers, more switches and optics per chip


def test_scaleout_cost_per_chip_grows_with_port_speed():
    d = Draws()
    for n in (8, 1024, 100_000):
        usd = [float(scaleout(n, g, d).usd + scaleout(n, g, d).nic_usd) for g in (400, 800, 1600)]
        w = [float(scaleout(n, g, d).w + scaleout(n, g, d).nic_w) for g in (400, 800, 1600)]
        assert usd[0] < usd[1] < usd[2] and w[0] < w[1] < w[2]
    grid = np.arange(25.0, 3300.0, 25.0)
    totals = [float(scaleout(1024, g, d).usd + scaleout(1024, g, d).nic_usd) for g in grid]
    assert np.all(np.diff(totals) >= 0)
    assert nic_ports(100) == ("400g", 0.25) and nic_ports(800) == ("800g", 1.0) and nic_ports(2400) == ("1600g", 2.0)


def _design(links, domain, fabric="roce", lane_gbps=200.0, lanes=4):
    return {"scaleup": {"links": links, "lanes_per_link": lanes, "lane_gbps": lane_gbps, "domain": domain,
                        "fabric": fabric}, "scaleout_gbps": 800}


@pytest.mark.parametrize("fabric", ["roce", "nvswitch", "other", "ici", "infinity-fabric"])
def test_a_larger_scaleup_domain_never_costs_less_per_chip(fabric):
    d = Draws()
    for links in (4, 8, 16, 32):
        costs = [scaleup_cost(scaleup_of_design(_design(links, n, fabric)), d)
                 for n in (1, 2, 4, 8, 16, 32, 64, 72, 128, 256, 576, 1024, 9216)]
        usd = [float(c.rack_usd + c.pod_usd) for c in costs]
        w = [float(c.rack_w + c.pod_w) for c in costs]
        assert np.all(np.diff(usd) >= 0) and np.all(np.diff(w) >= 0), (fabric, links, usd)


def test_nvlink_domains_cost_more_beyond_one_tier():
    d = Draws()
    usd = [float(scaleup_cost(ScaleUp("nvlink", n, 7200.0, 400.0, "nvlink5"), d).rack_usd
                 + scaleup_cost(ScaleUp("nvlink", n, 7200.0, 400.0, "nvlink5"), d).pod_usd) for n in (8, 72, 576)]
    assert usd[0] == usd[1] < usd[2]                       # NVL576 adds a second switch tier and optics


@pytest.mark.parametrize("domain", [8, 32, 64, 128])
def test_more_or_faster_scaleup_links_cost_more(domain):
    d = Draws()
    by_links = [scaleup_cost(scaleup_of_design(_design(n, domain)), d) for n in (8, 16, 32)]
    usd = [float(c.rack_usd + c.pod_usd) for c in by_links]
    assert usd[0] < usd[1] < usd[2]
    by_rate = [scaleup_cost(scaleup_of_design(_design(16, domain, lane_gbps=r)), d) for r in (100.0, 200.0)]
    assert float(by_rate[0].rack_usd + by_rate[0].pod_usd) < float(by_rate[1].rack_usd + by_rate[1].pod_usd)


def test_a_rack_price_that_holds_the_scaleup_is_not_charged_for_a_larger_rack_domain():
    d = Draws()
    held = ("scaleup", "nic", "server")
    for chip_id in ("gb200", "gb300", "mi455x"):
        net = chip_network(resolve_chip(chip_id), d)
        assert float(net.scaleup_usd) > 0 and float(net.pod_usd) == 0
        assert float(net.usd(held)) == pytest.approx(float(net.scaleout_usd))


def test_catalog_chips_get_their_fabric():
    kinds = {c: chip_network(resolve_chip(c), Draws()).scaleup.kind
             for c in ("h100-sxm", "gb200", "tpu-v7", "mi300x", "gaudi3", "l40s", "h100-pcie", "mi455x")}
    assert kinds == {"h100-sxm": "nvlink", "gb200": "nvlink", "tpu-v7": "torus", "mi300x": "direct",
                     "gaudi3": "direct", "l40s": "none", "h100-pcie": "none", "mi455x": "switched"}
    assert chip_network(resolve_chip("tpu-v7"), Draws()).port == "400g"       # 100G DCN: a share of a 400G NIC
    assert float(chip_network(resolve_chip("tpu-v7"), Draws()).nic_usd) == pytest.approx(
        0.25 * get("network_nic_usd", "400g").value)


def test_network_constants_are_sourced_and_ranged():
    from tokenfab import catalog
    names = [n for n in catalog.constants() if n.startswith("network_")]
    assert len(names) >= 15
    for name in names:
        rec = catalog.constants()[name]
        assert str(rec["source"]).startswith("http") and rec.get("note"), name
    for name in ("network_switch_usd", "network_transceiver_usd", "network_transceiver_w", "network_nic_usd",
                 "network_nvlink_switch_usd", "network_scaleup_switch_usd", "network_ocs_usd_per_port"):
        for key in keys(name) or (None,):
            u = get(name, key) if key else get(name)
            assert u.low < u.value < u.high, (name, key)


def test_monte_carlo_draws_the_network():
    d = Draws(n=500, seed=3)
    net = chip_network(resolve_chip("h100-sxm"), d, 1024)
    spread = np.asarray(net.usd(()))
    assert spread.shape == (500,) and spread.std() > 0
    assert "network_transceiver_usd.400g" in d.used and "network_switch_usd.tomahawk5" in d.used
