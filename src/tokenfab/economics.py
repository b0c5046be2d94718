"""Total cost of ownership, $ per million tokens, and when a custom chip beats buying GPUs.

A catalog GPU and a custom design are priced on the same basis: the accelerator (catalog price, or
the silicon model's unit cost plus NRE over the volume), its server slot, its share of the network
and of the building (per W), annualised over the depreciation life at the cost of capital; plus
power x PUE x $/kWh at the load the step-cost model predicts, and maintenance. Every uncertain input
is a catalog low/value/high, drawn by a seeded `Draws`, so each figure comes as P10/P50/P90.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.compare import Option, best_option, hardware_spec
from tokenfab.constants import Draws, percentiles
from tokenfab.hardware import Chip
from tokenfab.perf.params import Calibration
from tokenfab.predict import QueryError, answer, plan_query
from tokenfab.queries import Query

Num = float | np.ndarray
HOURS_PER_YEAR = 8760.0
DEFAULT_UTILISATION = 0.7
DEFAULT_SAMPLES = 10_000


class EconomicsError(ValueError):
    """Inputs the cost model cannot price (no price for a chip, model does not fit...)."""


def annuity(rate: Num, years: Num) -> Num:
    """Share of a capital sum paid each year to repay it with interest over `years`."""
    rate = np.asarray(rate, dtype=float)
    years = np.asarray(years, dtype=float)
    safe = np.where(rate > 0, rate, 1.0)
    return np.where(rate > 0, safe / (1.0 - (1.0 + safe) ** (-years)), 1.0 / years)


@dataclass(frozen=True)
class Serving:
    """How one chip type serves the model: best layout and the throughput/power it delivers."""

    option: Option
    input_len: float
    output_len: float
    input_s_per_token: float      # device-seconds of prefill per input token
    busy_power_w: float           # accelerator power at full load, per device

    @property
    def chip(self) -> Chip:
        return self.option.chip

    @property
    def out_tps(self) -> float:
        return self.option.tokens_per_s_per_device


def serving(chip: Chip, model: str, isl: float, osl: float, calibration: Calibration | None = None) -> Serving:
    """Best layout of `model` on `chip` (offline max throughput) and its prefill cost per input token."""
    opt = best_option(chip, model, isl, osl, calibration)
    if opt is None:
        raise EconomicsError(f"model {model} does not fit on {chip.id} with tp <= 8 at fp4/fp8/bf16")
    batch = max(1, int(8192 // max(isl, 1)))
    q = Query(id="prefill", scenario="prefill", hardware=hardware_spec(chip), model=model, devices=opt.tp, tp=opt.tp,
              precision=opt.precision, input_len=isl, batch=batch)
    try:
        ttft = answer(plan_query(q), calibration)["ttft_ms_mean"] / 1e3
    except QueryError as err:
        raise EconomicsError(str(err)) from None
    power = opt.tokens_per_s_per_device / max(opt.tokens_per_joule, 1e-12) if opt.tokens_per_joule else 0.0
    return Serving(opt, isl, osl, ttft * opt.tp / (batch * isl), power)


@dataclass(frozen=True)
class Hourly:
    """$ per accelerator-hour by component (floats, or arrays of Monte Carlo samples)."""

    accelerator: Num
    server_network: Num
    facility: Num
    power: Num
    maintenance: Num

    @property
    def total(self) -> Num:
        return self.accelerator + self.server_network + self.facility + self.power + self.maintenance

    @property
    def capex(self) -> Num:
        return self.accelerator + self.server_network + self.facility


def hourly_cost(price_usd: Num, tdp_w: float, busy_power_w: Num, d: Draws,
                utilisation: float = DEFAULT_UTILISATION) -> Hourly:
    """TCO per accelerator-hour: annualised capex (accelerator, server slot, network, building per W)
    plus power at the utilised load (idle = static power) x PUE x $/kWh, plus maintenance."""
    rate = d("cost_of_capital")
    life = d("depreciation_years")
    hardware = price_usd + d("server_cost_usd_per_slot") + d("network_cost_usd_per_accelerator")
    host = d("server_host_power_w_per_accelerator")
    per_year = annuity(rate, life)
    accel = price_usd * per_year / HOURS_PER_YEAR
    server = (hardware - price_usd) * per_year / HOURS_PER_YEAR
    facility = (tdp_w + host) * d("facility_usd_per_w") * annuity(rate, d("facility_life_years")) / HOURS_PER_YEAR
    static = tdp_w * d("static_power_share")
    avg_w = utilisation * busy_power_w + (1.0 - utilisation) * np.minimum(static, busy_power_w) + host
    power = avg_w / 1000.0 * d("pue") * d("electricity_usd_per_kwh")
    maintenance = hardware * d("maintenance_share_per_year") / HOURS_PER_YEAR
    return Hourly(accel, server, facility, power, maintenance)


@dataclass(frozen=True)
class TokenCost:
    """$ per million tokens of one chip type serving one model, with the hourly cost behind it."""

    serving: Serving
    hourly: Hourly
    utilisation: float
    usd_per_mtok_out: Num       # all cost charged to output tokens
    usd_per_mtok_in: Num        # prefill's share, per input token
    usd_per_mtok_out_only: Num  # decode's share, per output token
    cloud_usd_per_mtok: tuple[float, float, float] | None   # low, typical, high on the rental basis


def accelerator_price(chip: Chip, d: Draws, volume: float | None = None) -> Num:
    """Purchase price: the catalog's range for a catalog chip, the silicon model's cost for a design."""
    from tokenfab.silicon import resolve_design
    from tokenfab.silicon.build import DEFAULT_VOLUME, analyse
    if "design_path" in chip.sources:
        design = resolve_design(chip.sources["design_path"])
        return analyse(design, d, volume or DEFAULT_VOLUME).unit_cost_with_nre
    if chip.price_usd is None:
        raise EconomicsError(f"hardware {chip.id!r} has no purchase price in the catalog (not sold); "
                             "price it as a design or choose a chip with price_usd")
    p = chip.price_usd
    return d.triangular(f"price:{chip.id}", p.low, p.value, p.high)


def token_cost(srv: Serving, d: Draws, utilisation: float = DEFAULT_UTILISATION,
               volume: float | None = None) -> TokenCost:
    """$ per million input and output tokens at `utilisation` (share of hours at full throughput)."""
    if not 0 < utilisation <= 1:
        raise EconomicsError(f"utilisation {utilisation!r}: allowed 0 < u <= 1")
    chip = srv.chip
    if not chip.tdp_w:
        raise EconomicsError(f"hardware {chip.id!r} has no TDP in the catalog: its power cannot be priced")
    busy = srv.busy_power_w * d.triangular("power_model_error", 0.85, 1.0, 1.15)
    hr = hourly_cost(accelerator_price(chip, d, volume), chip.tdp_w, busy, d, utilisation)
    usd_s = hr.total / 3600.0
    out_tps = srv.out_tps * utilisation
    blended = usd_s / out_tps * 1e6
    isl, osl = srv.input_len, srv.output_len
    request_s = osl / srv.out_tps                       # device-seconds per request at full load
    prefill_share = min(isl * srv.input_s_per_token / request_s, 0.95)
    per_in = blended * osl * prefill_share / isl
    per_out = blended * (1.0 - prefill_share)
    cloud = None
    if chip.cloud_usd_hr:
        c = chip.cloud_usd_hr
        cloud = tuple(v / 3600.0 / out_tps * 1e6 for v in (c.low, c.value, c.high))
    return TokenCost(srv, hr, utilisation, blended, per_in, per_out, cloud)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BreakEven:
    """When a custom design serving a demand costs less than serving it on a GPU."""

    gpu: TokenCost
    custom: TokenCost
    demand_tokens_per_day: float
    gpus_needed: int
    customs_needed: int
    volume: Num        # custom chips whose lifetime saving repays the NRE (inf: never)
    years: Num         # time at which the custom fleet's cumulative cost drops below the GPUs' (inf: never)
    gpu_life_cost: Num     # one GPU over the depreciation life (TCO)
    custom_life_cost: Num  # one custom chip over the depreciation life (TCO, without NRE)


def break_even(gpu: Serving, custom: Serving, demand_tokens_per_day: float, d: Draws,
               utilisation: float = DEFAULT_UTILISATION, gpu_price_scale: float = 1.0) -> BreakEven:
    """Break-even volume and time of a custom design against a GPU for a demand in output tokens/day.

    Both fleets cost their hourly TCO (annualised capex + opex; the custom chip at its unit cost
    without NRE); the custom fleet also pays the NRE up front. Time: NRE / hourly saving of the custom
    fleet at this demand. Volume: custom chips over whose life the saving per chip repays the NRE."""
    from tokenfab.silicon import resolve_design
    from tokenfab.silicon.build import analyse
    from tokenfab.silicon.cost import nre
    if demand_tokens_per_day <= 0:
        raise EconomicsError("demand must be a positive number of output tokens per day")
    if "design_path" not in custom.chip.sources:
        raise EconomicsError(f"--design {custom.chip.id!r} is a catalog chip: give a design YAML or shipped design id")
    n_gpu = int(np.ceil(demand_tokens_per_day / (gpu.out_tps * utilisation * 86400.0)))
    n_cus = int(np.ceil(demand_tokens_per_day / (custom.out_tps * utilisation * 86400.0)))
    design = resolve_design(custom.chip.sources["design_path"])
    report = analyse(design, d, volume=max(n_cus, 1))
    g_hr = _hourly(gpu, gpu_price_scale * accelerator_price(gpu.chip, d), d, utilisation)
    c_hr = _hourly(custom, report.unit.total, d, utilisation)
    one_time = nre(design, d)
    life_h = d("depreciation_years") * HOURS_PER_YEAR
    # per custom chip, the GPUs it replaces cost (throughput ratio) x their hourly TCO
    saving_per_chip = custom.out_tps / gpu.out_tps * g_hr - c_hr
    volume = np.where(saving_per_chip > 0, one_time / np.where(saving_per_chip > 0, saving_per_chip, 1.0) / life_h,
                      np.inf)
    fleet_saving = n_gpu * g_hr - n_cus * c_hr
    years = np.where(fleet_saving > 0, one_time / np.where(fleet_saving > 0, fleet_saving, 1.0) / HOURS_PER_YEAR,
                     np.inf)
    return BreakEven(token_cost(gpu, d, utilisation), token_cost(custom, d, utilisation, max(n_cus, 1)),
                     demand_tokens_per_day, n_gpu, n_cus, volume, years, g_hr * life_h, c_hr * life_h)


def _hourly(srv: Serving, price: Num, d: Draws, utilisation: float) -> Num:
    assert srv.chip.tdp_w
    busy = srv.busy_power_w * d.triangular("power_model_error", 0.85, 1.0, 1.15)
    return hourly_cost(price, srv.chip.tdp_w, busy, d, utilisation).total


def band(x: Num) -> tuple[float, float, float]:
    """P10, P50, P90 (inf-safe)."""
    return percentiles(x)


__all__ = ["DEFAULT_SAMPLES", "DEFAULT_UTILISATION", "BreakEven", "EconomicsError", "Hourly", "Serving",
           "TokenCost", "annuity", "band", "break_even", "hourly_cost", "serving", "token_cost"]
