"""TCO, $/Mtok and break-even on the same basis for a catalog GPU and a custom design."""

import numpy as np
import pytest

from tokenfab.constants import Draws
from tokenfab.economics import annuity, break_even, hourly_cost, serving, token_cost
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
    years = [float(break_even(h100, custom, demand, Draws()).years) for demand in (1e11, 1e12, 1e13)]
    assert years[0] > years[1] > years[2] > 0
