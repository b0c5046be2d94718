"""The fleet programme: equal to brute-force enumeration on small instances; monotone in supply, price, demand."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab.fleet.milp import Infeasible, Instance, Option, solve


def _df(rate: float, T: int) -> np.ndarray:
    return (1.0 + rate) ** (-np.arange(T + 1) / 12.0)


def brute_force(inst: Instance) -> float:
    """Every whole-server delivery schedule and build decision; routing (one class) filled cheapest-first."""
    assert len(inst.classes) == 1
    T = inst.months
    df = _df(inst.discount_rate, T)
    owned = [o for o in inst.options if o.owned]
    rented = [o for o in inst.options if not o.owned]
    choices = []
    for o in owned:
        per_month = [range(int(o.supply[t] // o.server) + 1) for t in range(T)]
        choices.append(list(itertools.product(*per_month)))
    best = np.inf
    for plan in itertools.product(*choices):
        cost = 0.0
        in_service = []
        ok = True
        for o, servers in zip(owned, plan, strict=True):
            chips = np.array(servers, dtype=float) * o.server
            if o.kind == "custom" and (o.nre > 0 or o.min_volume > 0):
                built = chips.sum() > 0 or (o.min_volume == 0 and False)
                if built:
                    if chips.sum() < o.min_volume:
                        ok = False
                    cost += o.nre * df[o.nre_month]
            n = o.installed + np.cumsum(chips)
            in_service.append(n)
            for t in range(T):
                resid = max(0.0, 1.0 - (T - t) / o.life_months)
                cost += chips[t] * o.unit_cost * (df[t] - resid * df[T])
            cost += float(np.dot(n * o.opex_month, df[:T]))
        if not ok:
            continue
        watts = sum(n * o.power_w for n, o in zip(in_service, owned, strict=True))
        if np.any(watts > inst.power_cap_w + 1e-9):
            continue
        for t in range(T):
            # (cost per chip-month, tokens/s per chip, chips available)
            pool = [(o.busy_month[0] * df[t], o.capacity[0], n[t]) for o, n in zip(owned, in_service, strict=True)]
            pool += [((o.rent_month + o.busy_month[0]) * df[t], o.capacity[0], o.available[t]) for o in rented]
            need = inst.need[0, t]
            for c, cap, avail in sorted((p for p in pool if p[1] > 0), key=lambda p: p[0] / p[1]):
                use = min(avail, need / cap)
                cost += use * c
                need -= use * cap
            if need > 1e-9 * max(inst.need[0, t], 1.0):
                ok = False
                break
        if ok:
            best = min(best, cost)
    return best


def small(seed: int, custom: bool = False, T: int = 3) -> Instance:
    rng = np.random.default_rng(seed)
    opts = [
        Option("gpu-a", "buy", np.array([rng.uniform(50, 150)]), unit_cost=rng.uniform(2e4, 4e4),
               supply=np.array([0.0] + [2.0] * (T - 1)), opex_month=rng.uniform(100, 400),
               busy_month=np.array([rng.uniform(10, 60)]), power_w=1000.0, server=1, installed=1, life_months=48),
        Option("gpu-b", "buy", np.array([rng.uniform(100, 300)]), unit_cost=rng.uniform(4e4, 7e4),
               supply=np.full(T, 1.0), opex_month=rng.uniform(100, 400), busy_month=np.array([rng.uniform(10, 60)]),
               power_w=1400.0, server=1, life_months=48),
        Option("rent", "rent", np.array([rng.uniform(50, 150)]), available=np.full(T, 3.0),
               rent_month=rng.uniform(1000, 3000), busy_month=np.zeros(1)),
    ]
    if custom:
        opts.append(Option("asic", "custom", np.array([rng.uniform(200, 400)]), unit_cost=rng.uniform(1e4, 2e4),
                           supply=np.array([0.0] * (T - 2) + [2.0, 2.0]), opex_month=100.0,
                           busy_month=np.array([10.0]), power_w=600.0, server=1, life_months=48,
                           nre=rng.uniform(2e4, 8e4), min_volume=1, gpu=False))
    need = np.array([rng.uniform(100, 250) * (1.0 + 0.5 * np.arange(T))])
    return Instance(["all"], T, need, need * 86400 * 30, opts, np.full(T, 6000.0), 0.1, mip_rel_gap=0.0)


@pytest.mark.parametrize("seed", range(6))
def test_optimum_equals_brute_force(seed: int) -> None:
    inst = small(seed, custom=seed % 2 == 1)
    expected = brute_force(inst)
    assert np.isfinite(expected)
    assert solve(inst).cost == pytest.approx(expected, rel=1e-7)


def test_power_cap_binds_like_brute_force() -> None:
    inst = replace(small(3), power_cap_w=np.full(3, 3000.0))
    sol = solve(inst)
    assert sol.cost == pytest.approx(brute_force(inst), rel=1e-7)
    assert any("power" in b for b in sol.binding) or sol.in_service[:2].sum() <= 3


def _scaled(inst: Instance, supply: float = 1.0, price: float = 1.0, demand: float = 1.0) -> Instance:
    opts = [replace(o, supply=None if o.supply is None else o.supply * supply,
                    available=None if o.available is None else o.available * supply,
                    unit_cost=o.unit_cost * price, rent_month=o.rent_month * price) for o in inst.options]
    return replace(inst, options=opts, need=inst.need * demand, tokens_per_month=inst.tokens_per_month * demand)


def medium(seed: int) -> Instance:
    """Two classes, unlimited rental: always feasible."""
    rng = np.random.default_rng(seed)
    T = 4
    opts = [Option(f"buy{i}", "buy", rng.uniform(20, 200, 2), unit_cost=rng.uniform(1e4, 5e4),
                   supply=np.array([0.0] + [float(rng.integers(1, 4))] * (T - 1)), opex_month=rng.uniform(50, 300),
                   busy_month=rng.uniform(5, 40, 2), power_w=1000.0, server=int(rng.integers(1, 3)), life_months=36)
            for i in range(2)]
    opts.append(Option("rent", "rent", rng.uniform(20, 200, 2), available=np.full(T, np.inf),
                       rent_month=rng.uniform(800, 3000), busy_month=np.zeros(2)))
    need = rng.uniform(50, 400, (2, 1)) * (1.0 + 0.3 * np.arange(T))[None, :]
    return Instance(["a", "b"], T, need, need * 2.6e6, opts, np.full(T, 5000.0), 0.08, mip_rel_gap=0.0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), more=st.floats(1.0, 3.0), cheaper=st.floats(0.3, 1.0), grow=st.floats(1.0, 2.0))
def test_more_supply_lower_price_never_cost_more_more_demand_never_less(seed: int, more: float, cheaper: float,
                                                                        grow: float) -> None:
    base = solve(medium(seed)).cost
    tol = 1e-7 * abs(base) + 1e-6
    assert solve(_scaled(medium(seed), supply=more)).cost <= base + tol
    assert solve(_scaled(medium(seed), price=cheaper)).cost <= base + tol
    assert solve(_scaled(medium(seed), demand=grow)).cost >= base - tol


def test_a_class_no_option_can_serve_is_named() -> None:
    inst = small(0)
    inst = replace(inst, options=[replace(o, capacity=np.zeros(1)) for o in inst.options],
                   slo_text=["p99 TTFT <= 1 ms"])
    with pytest.raises(Infeasible, match=r"demand 'all': no hardware option meets its SLO \(p99 TTFT <= 1 ms\)"):
        solve(inst)


def test_power_below_one_server_is_named() -> None:
    inst = replace(small(0), power_cap_w=np.full(3, 500.0))
    with pytest.raises(Infeasible, match=r"datacenter.capacity_mw: 0.0005 MW is below one server"):
        solve(inst)


def test_unmeetable_demand_names_month_class_and_limits() -> None:
    inst = small(1)
    inst = replace(inst, need=inst.need * 20)
    with pytest.raises(Infeasible) as e:
        solve(inst)
    text = str(e.value)
    assert "demand 'all' in month 0" in text and "rental availability of rent" in text and "\n" not in text


def test_default_gap_keeps_whole_servers_and_is_deterministic() -> None:
    inst = replace(medium(4), mip_rel_gap=1e-3)
    a, b = solve(inst), solve(inst)
    assert a.cost == b.cost and np.array_equal(a.delivered, b.delivered)
    owned = [i for i, o in enumerate(inst.options) if o.owned]
    for i in owned:
        assert np.allclose(a.delivered[i] / inst.options[i].server, np.round(a.delivered[i] / inst.options[i].server))
    assert a.gap <= 1e-3
