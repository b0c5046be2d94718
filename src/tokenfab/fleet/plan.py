"""The fleet plan file: demand per traffic class over time, hardware options, datacenter power, scenarios.

A plan is YAML validated by pydantic (unknown fields and wrong types are rejected with the field's path),
then checked for meaning: dates in order, months inside the horizon, positive caps. Figures that are not
read from the catalog carry `source:` or `assumption: true` with `low`/`high`, as everywhere in tokenfab;
the planner uses `value` and the scenarios may use the band.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenfab.units import month_index, month_label
from tokenfab.yaml_input import load_user_yaml, yaml_problem


class FleetError(ValueError):
    """Bad or infeasible fleet input; the message is one line naming the field or the constraint."""




def parse_month(text: str, where: str) -> int:
    """'2026-03' -> months since year 0 (so differences are month counts); the plan's field named on a bad one."""
    try:
        return month_index(text)
    except ValueError:
        raise FleetError(f"{where} = {text!r}: a month is written YYYY-MM (e.g. 2026-03)") from None


class _Doc(BaseModel):
    """Documentation every section may carry (ignored by the planner)."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = None
    sources: list[str] | dict[str, str] | None = None
    note: str | None = None
    assumption: bool | None = None


class Figure(_Doc):
    """A number with its provenance and, where uncertain, its plausible range."""

    value: float
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _band(self) -> Figure:
        lo = self.low if self.low is not None else self.value
        hi = self.high if self.high is not None else self.value
        if not lo <= self.value <= hi:
            raise ValueError(f"low <= value <= high is required (got {lo}, {self.value}, {hi})")
        return self


Num = Figure | float


def value(x: Num | None, default: float | None = None) -> float | None:
    if x is None:
        return default
    return x.value if isinstance(x, Figure) else float(x)


def band(x: Num | None) -> tuple[float, float] | None:
    if isinstance(x, Figure):
        return (x.low if x.low is not None else x.value, x.high if x.high is not None else x.value)
    return None


class SLOSpec(_Doc):
    ttft_s: float | None = Field(default=None, gt=0)
    tpot_s: float | None = Field(default=None, gt=0)
    percentile: float = Field(gt=0, le=100)


class DemandSpec(_Doc):
    """One traffic class: its request shape and SLO (a workload preset or an inline class), and its volume."""

    name: str
    preset: str | None = None
    request_class: dict[str, Any] | None = Field(default=None, alias="class")
    slo: SLOSpec | None = None
    tokens_per_day: Num | None = Field(default=None, description="in the first month")
    growth_per_month: Num = 0.0
    series: dict[str, float] | None = None   # YYYY-MM -> tokens/day, linearly interpolated, flat outside
    low: float = Field(default=1.0, gt=0, description="low-demand multiplier reached at the horizon's end")
    high: float = Field(default=1.0, gt=0, description="high-demand multiplier reached at the horizon's end")
    arrival_cv: float | None = Field(default=None, ge=0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BuySpec(_Doc):
    """A catalog accelerator bought outright."""

    id: str
    name: str | None = None
    price_usd: Num | None = None            # default: the catalog's price
    lead_time_months: Num = 0.0
    supply_per_month: Num | None = None     # chips deliverable per month (None = unlimited)
    installed: int = Field(default=0, ge=0)
    available_from: str | None = None       # first delivery month (YYYY-MM), e.g. a product launch
    server_size: int = Field(default=8, ge=1)


class RentSpec(_Doc):
    """Capacity rented by the hour (off-site: it uses none of the datacenter's power)."""

    id: str
    name: str | None = None
    usd_per_hour: Num | None = None         # default: the catalog's typical cloud price
    available: Num | None = None            # chips rentable in any month (None = unlimited)


class CustomSpec(_Doc):
    """A custom chip from the silicon model: how it is bought, NRE, tape-out, ramp, yield risk, volume commitment.

    Bought as `economics.CustomTerms` says: from a Broadcom-style partner (its price per chip, the buyer's share of
    the NRE) or in-house (at cost, all of the NRE); either way with a software NRE, a software team paid every month
    once the chip is built, and a first generation's software maturity (each chip serves that share of what the
    simulator gives a mature stack)."""

    design: str
    name: str | None = None
    partner: Literal["broadcom-style", "in-house"] = "broadcom-style"
    generation: int = Field(default=1, ge=1)
    nre_usd: Num | None = None              # default: the buyer's NRE (hardware share + software) from the catalog
    unit_cost_usd: Num | None = None        # default: the partner's price of the silicon model's unit cost at
                                            # `min_volume` (given: the buyer's price per chip)
    software_usd_per_year: Num | None = None   # default: the catalog's software run cost

    @model_validator(mode="after")
    def _costs(self) -> CustomSpec:
        for name in ("nre_usd", "unit_cost_usd", "software_usd_per_year"):
            v = value(getattr(self, name))
            if v is not None and not (v >= 0 and v < float("inf")):
                raise ValueError(f"{name} = {v!r}: a cost in dollars, 0 or more")
        return self
    design_start: str | None = None         # when the NRE is committed (default: the plan's start)
    tape_out: str
    first_delivery: str
    ramp_months: int = Field(default=6, ge=1)
    supply_per_month: Num                   # chips per month at full ramp
    yield_factor: Num = 1.0                 # share of the planned good dies actually obtained
    min_volume: int = Field(default=0, ge=0)   # chips committed if the chip is built (take-or-pay)
    server_size: int = Field(default=8, ge=1)


class HardwareSpec(_Doc):
    buy: list[BuySpec] = []
    rent: list[RentSpec] = []
    custom: list[CustomSpec] = []


class DatacenterSpec(_Doc):
    capacity_mw: Num | dict[str, float]            # constant, or YYYY-MM -> MW from that month on
    usd_per_mw_month: Num | None = None     # default: catalog facility $/W annualised over its life
    pue: Num | None = None                  # default: catalog
    usd_per_kwh: Num | None = None          # default: catalog


class ScenarioSpec(_Doc):
    """Named shocks on top of the base case."""

    name: str
    gpu_price: float | None = Field(default=None, gt=-1, description="relative change, e.g. -0.3")
    rent_price: float | None = Field(default=None, gt=-1)
    supply: float | None = Field(default=None, ge=0, description="multiplier on GPU supply caps")
    tapeout_slip_months: int | None = Field(default=None, ge=0)
    yield_factor: float | None = Field(default=None, gt=0, le=1)
    demand: Literal["low", "base", "high"] | None = None
    power: float | None = Field(default=None, gt=0, description="multiplier on datacenter capacity")


class PlanSpec(_Doc):
    """The whole plan file."""

    name: str
    description: str | None = None
    model: str
    start: str
    months: int = Field(ge=1, le=240)
    discount_rate: Num | None = None        # annual; default: the catalog's cost of capital
    demand_tokens: Literal["output", "total"] = "output"
    peak_to_mean: Num = 1.0
    requests_per_probe: int = Field(default=3000, ge=100)
    mip_rel_gap: float = Field(default=1e-3, ge=0)
    demand: list[DemandSpec]
    hardware: HardwareSpec
    datacenter: DatacenterSpec
    scenarios: list[ScenarioSpec] = []


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part)[:1].isupper() or str(part).startswith(("float", "int", "function", "dict[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _one_line(err: ValidationError, where: str) -> FleetError:
    errors = err.errors()
    e = min(errors, key=lambda e: len(e["loc"]))
    # an error on a number-or-mapping union is reported on the mapping branch when a mapping was given
    for cand in errors:
        if isinstance(cand.get("input"), dict) and not cand["type"].startswith(("float", "int")):
            e = cand
            break
    loc = _where(tuple(e["loc"]))
    if e["type"] == "extra_forbidden":
        return FleetError(f"{where}{loc}: unknown field")
    got = "" if e["type"] == "missing" else f" (got {e['input']!r})"
    return FleetError(f"{where}{loc}: {e['msg']}{got}")


def parse_plan(data: Any, where: str = "") -> PlanSpec:
    """Validate a plan mapping; raises FleetError with one line naming the field."""
    if not isinstance(data, dict):
        raise FleetError(f"{where}a fleet plan is a mapping with name, model, start, months, demand, hardware, "
                         "datacenter")
    try:
        plan = PlanSpec.model_validate(data)
    except ValidationError as err:
        raise _one_line(err, where) from None
    check_dates(plan, where)
    return plan


def load_plan(path: str | Path) -> PlanSpec:
    p = Path(path)
    try:
        data = load_user_yaml(p.read_text())
    except OSError as err:
        raise FleetError(f"{p}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise FleetError(f"{p}: not valid YAML{yaml_problem(err)}") from None
    return parse_plan(data, f"{p}: ")


def check_dates(plan: PlanSpec, where: str = "") -> None:
    """Dates in order and inside the horizon; names the first field that is not."""
    start = parse_month(plan.start, f"{where}start")
    end = start + plan.months
    names = [d.name for d in plan.demand]
    if len(set(names)) != len(names):
        raise FleetError(f"{where}demand: class names must be unique, got {names}")
    if not plan.demand:
        raise FleetError(f"{where}demand: at least one traffic class is required")
    for i, d in enumerate(plan.demand):
        at = f"{where}demand[{i}] ({d.name})"
        if (d.preset is None) == (d.request_class is None):
            raise FleetError(f"{at}: give exactly one of preset or class")
        if (d.tokens_per_day is None) == (d.series is None):
            raise FleetError(f"{at}: give exactly one of tokens_per_day (with growth_per_month) or series")
        if d.low > 1.0 or d.high < 1.0:
            raise FleetError(f"{at}: low <= 1 <= high is required for the demand band (got {d.low}, {d.high})")
        if d.series is not None:
            months = [parse_month(k, f"{at}.series") for k in d.series]
            if months != sorted(months) or len(set(months)) != len(months):
                raise FleetError(f"{at}.series: dates out of order: {', '.join(d.series)} must increase")
            if any(v < 0 for v in d.series.values()):
                raise FleetError(f"{at}.series: tokens/day must be >= 0")
        elif (value(d.tokens_per_day) or 0.0) < 0:
            raise FleetError(f"{at}.tokens_per_day must be >= 0")
    for i, c in enumerate(plan.hardware.custom):
        at = f"{where}hardware.custom[{i}] ({c.name or c.design})"
        begin = parse_month(c.design_start, f"{at}.design_start") if c.design_start else start
        tape = parse_month(c.tape_out, f"{at}.tape_out")
        first = parse_month(c.first_delivery, f"{at}.first_delivery")
        if begin < start:
            raise FleetError(f"{at}: dates out of order: design_start {c.design_start} is before the plan start "
                             f"{plan.start}")
        if tape < begin:
            raise FleetError(f"{at}: dates out of order: tape_out {c.tape_out} is before design_start "
                             f"{month_label(begin)}")
        if first < tape:
            raise FleetError(f"{at}: dates out of order: first_delivery {c.first_delivery} is before tape_out "
                             f"{c.tape_out}")
        if begin >= end:
            raise FleetError(f"{at}: design_start {month_label(begin)} is after the horizon ends "
                             f"({month_label(end - 1)})")
    for i, b in enumerate(plan.hardware.buy):
        if b.available_from:
            parse_month(b.available_from, f"{where}hardware.buy[{i}].available_from")
    if not (plan.hardware.buy or plan.hardware.rent or plan.hardware.custom):
        raise FleetError(f"{where}hardware: list at least one option under buy, rent or custom")
    cap = plan.datacenter.capacity_mw
    if isinstance(cap, dict):
        months = [parse_month(k, f"{where}datacenter.capacity_mw") for k in cap]
        if months != sorted(months):
            raise FleetError(f"{where}datacenter.capacity_mw: dates out of order: {', '.join(cap)} must increase")
        if months[0] > start:
            raise FleetError(f"{where}datacenter.capacity_mw: the first entry ({month_label(months[0])}) must be at "
                             f"or before the plan start {plan.start}")
    scen = [s.name for s in plan.scenarios]
    if len(set(scen)) != len(scen) or "base" in scen:
        raise FleetError(f"{where}scenarios: names must be unique and not 'base', got {scen}")


__all__ = ["BuySpec", "CustomSpec", "DatacenterSpec", "DemandSpec", "Figure", "FleetError", "PlanSpec", "RentSpec",
           "ScenarioSpec", "band", "load_plan", "month_label", "parse_month", "parse_plan", "value"]
