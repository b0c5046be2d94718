"""From a fleet plan to the optimiser's numbers: hardware options, SLO capacities, costs, demand, power.

Capacities come from the serving simulator (`serve.capacity`: tokens/s per chip within each class's SLO,
at the best layout per chip), never from a typed table. Prices default to the catalog (accelerator price
and cloud rate, server/network per slot, host power, PUE, $/kWh, facility $/W, cost of capital,
depreciation life) and a custom chip's unit cost and NRE to the silicon model. A scenario's shocks are
applied here, so every scenario is the same programme with other numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokenfab import catalog
from tokenfab.constants import Draws
from tokenfab.deployment import Deployment
from tokenfab.economics import EconomicsError, annuity, price_basis, price_range, system_capex
from tokenfab.fleet.milp import DAYS_PER_MONTH, HOURS_PER_MONTH, Instance, Option
from tokenfab.fleet.plan import (
    CustomSpec,
    DemandSpec,
    FleetError,
    Num,
    PlanSpec,
    ScenarioSpec,
    month_label,
    parse_month,
    value,
)
from tokenfab.hardware import Chip, load_chip
from tokenfab.model import ModelSpec, load_model
from tokenfab.network import chip_network
from tokenfab.serve.capacity import Capacity, best_deployment, deployment_candidates
from tokenfab.workload import SLO as WorkloadSLO
from tokenfab.workload import Gamma, RequestClass, WorkloadError, preset, workload_from_dict


@dataclass(frozen=True)
class ClassDef:
    """A demand class resolved to the request shape the simulator samples."""

    name: str
    request_class: RequestClass
    arrival_cv: float

    def slo_text(self) -> str:
        slo = self.request_class.slo
        assert slo is not None
        parts = [f"TTFT <= {slo.ttft_s * 1e3:g} ms" if slo.ttft_s else "",
                 f"TPOT <= {slo.tpot_s * 1e3:g} ms" if slo.tpot_s else ""]
        return f"p{slo.percentile:g} " + " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class HardwareDef:
    """One plan option with the chip it names."""

    name: str
    kind: str          # buy | rent | custom
    chip: Chip
    spec: object       # the BuySpec / RentSpec / CustomSpec it came from


def class_defs(plan: PlanSpec) -> list[ClassDef]:
    out = []
    for i, d in enumerate(plan.demand):
        at = f"demand[{i}] ({d.name})"
        try:
            if d.preset is not None:
                wl = preset(d.preset)
            else:
                wl = workload_from_dict({"arrival": {"kind": "poisson", "rate": 1.0},
                                         "classes": [{"name": d.name, **(d.request_class or {})}]}, f"{at}.class: ")
        except WorkloadError as err:
            raise FleetError(f"{at}: {err}") from None
        if len(wl.classes) != 1:
            raise FleetError(f"{at}: preset {d.preset!r} has {len(wl.classes)} classes; give one class inline")
        rc = wl.classes[0]
        if d.slo is not None:
            try:
                rc = RequestClass(d.name, 1.0, rc.input_len, rc.output_len,
                                  WorkloadSLO(d.slo.ttft_s, d.slo.tpot_s, d.slo.percentile), rc.shared_prefix,
                                  rc.turns, rc.think_s)
            except WorkloadError as err:
                raise FleetError(f"{at}.slo: {err}") from None
        if rc.slo is None:
            raise FleetError(f"{at}: the class has no SLO; give slo: {{ttft_s, tpot_s, percentile}}")
        from dataclasses import replace
        rc = replace(rc, name=d.name, share=1.0)
        cv = d.arrival_cv if d.arrival_cv is not None else (wl.arrival.cv if isinstance(wl.arrival, Gamma) else 1.0)
        out.append(ClassDef(d.name, rc, float(cv)))
    return out


def hardware_defs(plan: PlanSpec) -> list[HardwareDef]:
    from tokenfab.catalog import UnknownIdError
    from tokenfab.silicon import DesignError, resolve_chip
    out: list[HardwareDef] = []
    for kind, specs in (("buy", plan.hardware.buy), ("rent", plan.hardware.rent), ("custom", plan.hardware.custom)):
        for i, s in enumerate(specs):
            ref = s.design if isinstance(s, CustomSpec) else s.id
            try:
                chip = resolve_chip(ref) if kind == "custom" else load_chip(ref)
            except (KeyError, UnknownIdError, DesignError, ValueError) as err:
                raise FleetError(f"hardware.{kind}[{i}]: {str(err).strip(chr(39))}") from None
            name = s.name or (f"{ref} (rent)" if kind == "rent" else ref)
            out.append(HardwareDef(name, kind, chip, s))
    names = [h.name for h in out]
    if len(set(names)) != len(names):
        raise FleetError(f"hardware: option names must be unique (set name:), got {names}")
    return out


CapacityTable = dict[tuple[str, str], tuple[Deployment | None, Capacity | None]]


def capacities(model: ModelSpec, hardware: list[HardwareDef], classes: list[ClassDef], requests: int,
               cache_dir: str | Path | None = None, progress: Callable[[str], None] | None = None) -> CapacityTable:
    """SLO capacity per (chip, class) at the best layout; each chip once, however many options name it."""
    table: CapacityTable = {}
    for hw in hardware:
        for cd in classes:
            key = (hw.chip.id, cd.name)
            if key in table:
                continue
            if progress:
                progress(f"{hw.chip.id} / {cd.name}")
            cands = deployment_candidates(model, hw.chip)
            if not cands:
                table[key] = (None, None)
                continue
            dep, cap = best_deployment(model, hw.chip, cd.request_class, candidates=cands, requests=requests,
                                       arrival_cv=cd.arrival_cv, cache_dir=cache_dir)
            table[key] = (dep, cap)
    return table


def _per_chip(cap: Capacity | None, basis: str) -> float:
    if cap is None or not cap.feasible:
        return 0.0
    return cap.output_tokens_per_s_per_chip + (cap.input_tokens_per_s_per_chip if basis == "total" else 0.0)


def demand_series(d: DemandSpec, start: int, months: int, case: str = "base") -> np.ndarray:
    """Tokens/day per month: compound growth from the first month, or a dated series interpolated (flat beyond
    its ends); `case` low/high scales it by the class's band, opening from 1 today to low/high at the end."""
    t = np.arange(months, dtype=float)
    if d.series is not None:
        at = np.array([parse_month(k, "series") - start for k in d.series], dtype=float)
        v = np.array(list(d.series.values()), dtype=float)
        base = np.interp(t, at, v)
    else:
        base = (value(d.tokens_per_day) or 0.0) * (1.0 + (value(d.growth_per_month) or 0.0)) ** t
    # today's demand is known: the low/high band opens linearly to its full width at the horizon's end
    mult = {"base": 1.0, "low": d.low, "high": d.high}[case]
    return base * (1.0 + (mult - 1.0) * t / max(months - 1, 1))


def _power_cap(plan: PlanSpec, start: int, months: int) -> np.ndarray:
    cap = plan.datacenter.capacity_mw
    if isinstance(cap, dict):
        at = np.array([parse_month(k, "capacity_mw") - start for k in cap])
        v = np.array(list(cap.values()), dtype=float)
        idx = np.searchsorted(at, np.arange(months), side="right") - 1
        mw = v[np.maximum(idx, 0)]
    else:
        mw = np.full(months, value(cap) or 0.0)
    if (mw < 0).any():
        raise FleetError("datacenter.capacity_mw must be >= 0")
    return mw * 1e6


@dataclass(frozen=True)
class Economics:
    """Catalog constants the plan did not override (nominal values)."""

    pue: float
    usd_per_kwh: float
    usd_per_mw_month: float
    discount_rate: float
    life_months: int
    system_usd: float          # server slot per accelerator (the network is priced per chip: network.chip_network)
    host_w: float
    static_share: float
    maintenance: float         # share of hardware capex per year


def economics(plan: PlanSpec) -> Economics:
    d = Draws()
    rate = value(plan.discount_rate, float(d("cost_of_capital")))
    assert rate is not None
    dc = plan.datacenter
    facility = float(d("facility_usd_per_w")) * 1e6 * float(annuity(float(d("cost_of_capital")),
                                                                     float(d("facility_life_years")))) / 12.0
    return Economics(
        pue=value(dc.pue, float(d("pue"))) or 1.0,
        usd_per_kwh=value(dc.usd_per_kwh, float(d("electricity_usd_per_kwh"))) or 0.0,
        usd_per_mw_month=value(dc.usd_per_mw_month, facility) or 0.0,
        discount_rate=rate,
        life_months=int(round(float(d("depreciation_years")) * 12)),
        system_usd=float(d("server_cost_usd_per_slot")),
        host_w=float(d("server_host_power_w_per_accelerator")),
        static_share=float(d("static_power_share")),
        maintenance=float(d("maintenance_share_per_year")),
    )


@dataclass(frozen=True)
class _CustomCosts:
    unit: float          # $ the buyer pays per chip (no server/network)
    nre: float           # $ the buyer pays once if the chip is built
    run_month: float     # $ per month of software team once built
    maturity: float      # share of the modelled throughput the chip's software delivers


def _custom_costs(spec: CustomSpec, yield_factor: float, slip_months: int) -> _CustomCosts:
    """What the buyer pays for the custom chip (`economics.CustomTerms`), from the plan or the silicon model and
    the catalog; a yield shortfall raises the silicon's share of the unit cost by 1 / yield_factor (fewer good
    dies per wafer), a tape-out slip adds a respin's masks and the slipped months of the software team."""
    from tokenfab.economics import CustomTerms, buyer_nre, partner_unit_price, software_maturity
    from tokenfab.silicon import analyse, resolve_design
    design = resolve_design(spec.design)
    d = Draws()
    terms = CustomTerms(spec.partner, spec.generation, float(slip_months))
    rep = analyse(design, d, volume=max(spec.min_volume, 1))
    if spec.unit_cost_usd is not None:
        unit = (value(spec.unit_cost_usd) or 0.0) / yield_factor
    else:
        cost = float(rep.unit.total) + float(rep.unit.silicon) * (1.0 / yield_factor - 1.0)
        unit = float(partner_unit_price(cost, d, terms))
    masks = float(d("mask_set_usd", design.node)) if slip_months > 0 else 0.0
    one_off = value(spec.nre_usd) if spec.nre_usd is not None else float(buyer_nre(rep.nre, masks, d, terms))
    run = value(spec.software_usd_per_year, float(d("software_run_usd_per_year")))
    return _CustomCosts(unit, float(one_off or 0.0), float(run or 0.0) / 12.0,
                        float(software_maturity(d, spec.generation)))


def compile_plan(plan: PlanSpec, hardware: list[HardwareDef], classes: list[ClassDef], caps: CapacityTable,
                 shock: ScenarioSpec | None = None, allow_custom: bool = True) -> Instance:
    """The optimiser's instance for the plan under a scenario's shocks."""
    s = shock or ScenarioSpec(name="base")
    econ = economics(plan)
    start = parse_month(plan.start, "start")
    T = plan.months
    gpu_mult = 1.0 + (s.gpu_price or 0.0)
    rent_mult = 1.0 + (s.rent_price or 0.0)
    supply_mult = s.supply if s.supply is not None else 1.0
    energy_kwh = econ.pue * econ.usd_per_kwh * HOURS_PER_MONTH / 1000.0     # $ per W-month of IT load

    peak = value(plan.peak_to_mean) or 1.0
    tokens_day = np.array([demand_series(d, start, T, s.demand or "base") for d in plan.demand])
    need = tokens_day * peak / 86400.0
    options: list[Option] = []
    for hw in hardware:
        cap_c = np.array([_per_chip(caps.get((hw.chip.id, c.name), (None, None))[1], plan.demand_tokens)
                          for c in classes])
        pw_c = np.array([(caps.get((hw.chip.id, c.name), (None, None))[1] or _ZERO).power_w_per_chip
                         for c in classes])
        tdp = hw.chip.tdp_w or 0.0
        static = tdp * econ.static_share
        busy = np.maximum(pw_c - static, 0.0) * energy_kwh
        spec = hw.spec
        if hw.kind == "rent":
            rate = _given_or_catalog(spec.usd_per_hour, hw.chip.cloud_usd_hr,  # type: ignore[attr-defined]
                                     f"hardware.rent ({hw.name}): the catalog has no cloud price for {hw.chip.id}; "
                                     "give usd_per_hour")
            avail = value(spec.available, math.inf)  # type: ignore[attr-defined]
            options.append(Option(hw.name, "rent", cap_c, available=np.full(T, float(avail)),
                                  rent_month=rate * rent_mult * HOURS_PER_MONTH, busy_month=np.zeros(len(classes)),
                                  gpu=True))
            continue
        if not tdp:
            raise FleetError(f"hardware ({hw.name}): {hw.chip.id} has no TDP: its power cannot be planned")
        # the chip's network share (scale-up fabric, scale-out fat tree of the catalog's default cluster)
        if isinstance(spec, CustomSpec):
            from tokenfab.silicon import resolve_design
            design = resolve_design(spec.design)
        else:
            design = None
        net = chip_network(hw.chip, Draws(), design=design)
        net_w = float(net.w)
        power_w = tdp + econ.host_w + net_w
        if hw.kind == "buy":
            price = _given_or_catalog(spec.price_usd, _catalog_price(hw.chip),  # type: ignore[attr-defined]
                                      f"hardware.buy ({hw.name}): the catalog has no price basis for "
                                      f"{hw.chip.id}; give price_usd")
            # a catalog rack price (or a rental-implied cost) already holds the server/network: not charged twice
            held = () if spec.price_usd is not None else price_basis(hw.chip).includes  # type: ignore[attr-defined]
            unit = price * gpu_mult + float(system_capex(Draws(), held, net))
            supply = np.full(T, float(value(spec.supply_per_month, math.inf)) * supply_mult)  # type: ignore
            lead = int(math.ceil(value(spec.lead_time_months) or 0.0))  # type: ignore[attr-defined]
            first = lead
            # first delivery: the plan's month, else the catalog's availability date of a not-yet-shipping chip
            avail_from = spec.available_from or _catalog_availability(hw.chip)  # type: ignore[attr-defined]
            if avail_from:
                first = max(first, parse_month(avail_from, "available_from") - start)
            supply[:max(first, 0)] = 0.0
            options.append(Option(hw.name, "buy", cap_c, unit_cost=unit, supply=supply,
                                  opex_month=_opex(unit, static, power_w, econ, energy_kwh, net_w),
                                  busy_month=busy, power_w=power_w, server=spec.server_size,  # type: ignore
                                  installed=spec.installed, life_months=econ.life_months,  # type: ignore
                                  lead_months=first, gpu=True))
            continue
        assert isinstance(spec, CustomSpec)
        yf = (s.yield_factor if s.yield_factor is not None else 1.0) * (value(spec.yield_factor) or 1.0)
        slip = s.tapeout_slip_months or 0
        bought = _custom_costs(spec, yf, slip)
        unit = bought.unit + econ.system_usd + float(net.usd())
        first = parse_month(spec.first_delivery, "first_delivery") - start + slip
        t = np.arange(T)
        ramp = np.clip((t - first + 1) / spec.ramp_months, 0.0, 1.0)
        supply = (value(spec.supply_per_month) or 0.0) * yf * ramp
        if not allow_custom:
            supply = np.zeros(T)
        begin = parse_month(spec.design_start, "design_start") - start if spec.design_start else 0
        options.append(Option(hw.name, "custom", cap_c * bought.maturity, unit_cost=unit, supply=supply,
                              opex_month=_opex(unit, static, power_w, econ, energy_kwh, net_w), busy_month=busy,
                              power_w=power_w, server=spec.server_size, life_months=econ.life_months,
                              nre=bought.nre, nre_month=begin, fixed_month=bought.run_month,
                              min_volume=spec.min_volume, lead_months=first, gpu=False))
    power = _power_cap(plan, start, T) * (s.power if s.power is not None else 1.0)
    labels = [month_label(start + t) for t in range(T)]
    return Instance([c.name for c in classes], T, need, tokens_day * DAYS_PER_MONTH, options, power,
                    econ.discount_rate, labels, plan.mip_rel_gap, slo_text=[c.slo_text() for c in classes])


_ZERO = Capacity(0.0, 0.0, 0.0, math.inf, math.inf, 99.0, 1, 0.0, 0, False)


def _catalog_price(chip: Chip) -> Any:
    """The catalog chip's capital cost on its price basis (purchase, rental-implied, reference design); None if none."""
    try:
        return price_range(chip)
    except EconomicsError:
        return None


def _catalog_availability(chip: Chip) -> str | None:
    """First-delivery month (YYYY-MM) the catalog gives for an announced, not yet shipping chip."""
    when = catalog.accelerators().get(chip.id, {}).get("availability")
    return str(when) if when else None


def _given_or_catalog(given: Num | None, catalog_figure: Any, missing: str) -> float:
    """A price the plan gives (a value or a range), else the catalog's figure; FleetError `missing` if neither."""
    if given is not None:
        return float(value(given))
    if catalog_figure:
        return float(catalog_figure.value)
    raise FleetError(missing)


def _opex(unit: float, static_w: float, power_w: float, econ: Economics, energy_kwh: float,
          network_w: float = 0.0) -> float:
    """$ per owned chip-month in service: idle power (static + host + network share) at PUE, maintenance, facility
    per MW."""
    idle_w = static_w + econ.host_w + network_w
    return idle_w * energy_kwh + unit * econ.maintenance / 12.0 + econ.usd_per_mw_month * power_w / 1e6


def model_of(plan: PlanSpec) -> ModelSpec:
    try:
        return load_model(plan.model)
    except (KeyError, ValueError) as err:
        raise FleetError(f"model: {str(err).strip(chr(39))}") from None


__all__ = ["CapacityTable", "ClassDef", "Economics", "HardwareDef", "capacities", "class_defs", "compile_plan",
           "demand_series", "economics", "hardware_defs", "model_of"]
