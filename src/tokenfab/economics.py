"""Total cost of ownership, $ per million tokens, and when a custom chip beats buying GPUs.

A catalog GPU and a custom design are priced on the same basis: the accelerator (catalog price, or
the silicon model's unit cost plus NRE over the volume), its server slot, its share of the network
(`network.chip_network`: its scale-up switches and links, and the scale-out fat tree of its cluster, so the share
grows with the cluster's tiers and the port speed) and of the building (per W), annualised over the depreciation
life at the cost of capital; plus power (the chip's, its host's and its network share's) x PUE x $/kWh at the load
the step-cost model predicts, and maintenance. Every uncertain input
is a catalog low/value/high, drawn by a seeded `Draws`, so each figure comes as P10/P50/P90.

Every chip has one price basis (`price_basis`): a purchase price (a rack price / GPUs already holds the
server, its NICs and the rack's scale-up switches, which are then not charged again), an ownership cost
implied from a cloud's committed rental rate for chips that are only rented (`implied_purchase_price`), or,
for chips a hyperscaler builds for itself, the silicon model's cost of its reference design, exactly as a
custom design is priced.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from tokenfab import catalog
from tokenfab.compare import Option, best_option, hardware_spec
from tokenfab.constants import Draws, percentiles
from tokenfab.hardware import Chip, Range
from tokenfab.network import NetworkShare, chip_network, default_share
from tokenfab.perf.params import Calibration
from tokenfab.predict import QueryError, answer, plan_query
from tokenfab.queries import Query

Num = float | np.ndarray
HOURS_PER_YEAR = 8760.0
DEFAULT_UTILISATION = 0.7
DEFAULT_SAMPLES = 10_000
# system parts a catalog price can already hold (`price_usd.includes`); the TCO then does not charge them again:
# the server slot, the scale-out fabric (switches, optics), the scale-up switches and copper inside the rack, the
# scale-up fabric beyond the rack (optics, optical circuit switches, upper switch tiers), the scale-out NICs
# (network.py prices the last four)
SYSTEM_PARTS = ("server", "network", "scaleup", "pod", "nic")
RACK_HOLDS = frozenset({"server", "scaleup", "nic"})   # what a rack-level price holds: compute trays, switch trays


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
    network: NetworkShare | None = None     # the network share behind server_network and the power

    @property
    def total(self) -> Num:
        return self.accelerator + self.server_network + self.facility + self.power + self.maintenance

    @property
    def capex(self) -> Num:
        return self.accelerator + self.server_network + self.facility


def system_capex(d: Draws, included: Collection[str] = (), network: NetworkShare | None = None) -> Num:
    """Server slot and network capex per accelerator (`network`: the chip's share, `network.chip_network`; default a
    chip-agnostic 400G scale-out share in the catalog's default cluster), less the parts its price already holds."""
    unknown = set(included) - set(SYSTEM_PARTS)
    if unknown:
        raise EconomicsError(f"price_usd.includes {sorted(unknown)}: allowed {', '.join(SYSTEM_PARTS)}")
    server = 0.0 if "server" in included else d("server_cost_usd_per_slot")
    net = default_share(d) if network is None else network
    return server + net.usd(included)


def hourly_cost(price_usd: Num, tdp_w: Num, busy_power_w: Num, d: Draws,
                utilisation: float = DEFAULT_UTILISATION, included: Collection[str] = (),
                network: NetworkShare | None = None) -> Hourly:
    """TCO per accelerator-hour: annualised capex (accelerator, server slot, network, building per W)
    plus power at the utilised load (idle = static power) x PUE x $/kWh, plus maintenance.

    `included` names the system parts (`SYSTEM_PARTS`) that `price_usd` already holds (a rack price / GPUs holds the
    server and the rack's scale-up switches; an ownership cost implied from a rental holds them all): they are not
    charged a second time. `network` is the chip's network share (`network.chip_network`, by its fabric and cluster
    size); its power is drawn around the clock, like the host's, whoever paid for the parts."""
    rate = d("cost_of_capital")
    life = d("depreciation_years")
    net = default_share(d) if network is None else network
    hardware = price_usd + system_capex(d, included, net)
    host = d("server_host_power_w_per_accelerator") + net.w
    per_year = annuity(rate, life)
    accel = price_usd * per_year / HOURS_PER_YEAR
    server = (hardware - price_usd) * per_year / HOURS_PER_YEAR
    facility = (tdp_w + host) * d("facility_usd_per_w") * annuity(rate, d("facility_life_years")) / HOURS_PER_YEAR
    static = tdp_w * d("static_power_share")
    avg_w = utilisation * busy_power_w + (1.0 - utilisation) * np.minimum(static, busy_power_w) + host
    power = avg_w / 1000.0 * d("pue") * d("electricity_usd_per_kwh")
    maintenance = hardware * d("maintenance_share_per_year") / HOURS_PER_YEAR
    return Hourly(accel, server, facility, power, maintenance, net)


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
    basis: PriceBasis | None = None                          # what the accelerator's capital cost rests on


@dataclass(frozen=True)
class PriceBasis:
    """What a chip's capital cost rests on, and which system parts (`SYSTEM_PARTS`) that figure holds."""

    kind: str                  # purchase | cloud-implied | internal-cost | design
    includes: frozenset[str]
    note: str


def _record(chip: Chip) -> dict:
    return catalog.accelerators().get(chip.id, {}) if "design_path" not in chip.sources else {}


def price_basis(chip: Chip) -> PriceBasis:
    """The chip's price basis: a design's silicon-model cost; else the catalog's purchase price (a rack-level price
    holds the server, its NICs and the rack's scale-up switches: `RACK_HOLDS`); else, for a chip only built in-house
    (`price_usd.basis: internal-cost`), the silicon model's cost of its reference design; else, for a chip only
    rented, an ownership cost implied from its cloud rate. `EconomicsError` when none of these exists."""
    if "design_path" in chip.sources:
        return PriceBasis("design", frozenset(), "silicon model unit cost plus NRE over the volume")
    price = _record(chip).get("price_usd") or {}
    if chip.price_usd is not None:
        kind = str(price.get("kind") or "catalog purchase price")
        includes = list(price.get("includes") or [])
        if "rack" in kind.lower():   # a rack-level price holds its trays (host, NICs, scale-up switches), marked or not
            includes = sorted(set(includes) | RACK_HOLDS)
        bad = set(includes) - set(SYSTEM_PARTS)
        if bad:
            raise EconomicsError(f"hardware {chip.id!r} price_usd.includes {sorted(bad)}: allowed "
                                 f"{', '.join(SYSTEM_PARTS)}")
        return PriceBasis("purchase", frozenset(includes), kind)
    if price.get("basis") == "internal-cost":
        if not price.get("design"):
            raise EconomicsError(f"hardware {chip.id!r}: price_usd.basis internal-cost needs price_usd.design "
                                 "(a shipped design id)")
        return PriceBasis("internal-cost", frozenset(),
                          f"silicon model unit cost of design {price['design']} plus NRE over the volume")
    if chip.cloud_usd_hr is not None and chip.tdp_w:
        return PriceBasis("cloud-implied", frozenset(SYSTEM_PARTS),
                          "ownership cost implied from the committed cloud rate less the cloud's margin")
    raise EconomicsError(f"hardware {chip.id!r} has no price basis in the catalog (no purchase price, no "
                         "reference design, no cloud rate); price it as a design or choose a priced chip")


def chip_tdp(chip: Chip, d: Draws) -> Num:
    """The chip's TDP: the catalog's `tdp_range_w` drawn around `tdp_w` where the power is an estimate."""
    if not chip.tdp_w:
        raise EconomicsError(f"hardware {chip.id!r} has no TDP in the catalog: its power cannot be priced")
    span = _record(chip).get("tdp_range_w") or {}
    if span.get("low") is None or span.get("high") is None:
        return chip.tdp_w
    return d.triangular(f"tdp:{chip.id}", float(span["low"]), chip.tdp_w, float(span["high"]))


def rental_rate(chip: Chip, d: Draws) -> Num:
    """$ per chip-hour of the longest published commitment: the 3-year committed rate (up to the 1-year one),
    else the on-demand rate (up to the catalog's high) less the catalog's 3-year commitment discount."""
    cloud = (_record(chip).get("cloud_usd_hr") or {})
    c3, c1 = cloud.get("committed_3yr"), cloud.get("committed_1yr")
    if c3:
        return d.triangular(f"rent3y:{chip.id}", float(c3), float(c3), float(c1 or c3))
    if chip.cloud_usd_hr is None:
        raise EconomicsError(f"hardware {chip.id!r} has no cloud rate in the catalog")
    c = chip.cloud_usd_hr   # an estimated on-demand rate carries its own low (`on_demand_low`)
    low = float(cloud.get("on_demand_low") or c.value)
    on_demand = d.triangular(f"rent:{chip.id}", min(low, c.value), c.value, max(c.high, c.value))
    return on_demand * (1.0 - d("cloud_commit_discount_3yr"))


def implied_purchase_price(chip: Chip, d: Draws, rate_usd_hr: Num | None = None) -> Num:
    """Ownership-equivalent capital cost of a chip that is only rented (TPU, Trainium, Inferentia).

    Method. A cloud's committed rate R pays for owning and running the chip for the hour (the chip, its
    share of host and network, the building, power, maintenance) plus the cloud's margin g, a share of the
    price (`cloud_margin`): the cost of a chip-hour is C = R x (1 - g). C is the same hourly TCO this
    module computes, so the implied capital cost P (the chip with its share of host and network, which the
    rental holds) is the one for which `hourly_cost(P, tdp, tdp, d, DEFAULT_UTILISATION, both parts)`
    equals C. That cost is linear in P, so P = (C - hourly_cost(0, ...)) / ((annuity + maintenance share)
    / 8760): the building, power and maintenance of the same chip are taken out of the rental first. R is
    the 3-year committed rate (the commitment nearest an ownership life; `rental_rate`). A rate below the
    opex alone gives P = 0. P rises with R and falls with g, so $/Mtok is monotone in both."""
    rate = rental_rate(chip, d) if rate_usd_hr is None else rate_usd_hr
    cost_hr = rate * (1.0 - d("cloud_margin"))
    tdp = chip_tdp(chip, d)
    opex_only = hourly_cost(0.0, tdp, tdp, d, DEFAULT_UTILISATION, SYSTEM_PARTS, chip_network(chip, d)).total
    per_usd_hr = (annuity(d("cost_of_capital"), d("depreciation_years")) + d("maintenance_share_per_year")) \
        / HOURS_PER_YEAR
    return np.maximum((cost_hr - opex_only) / per_usd_hr, 0.0)


def accelerator_price(chip: Chip, d: Draws, volume: float | None = None) -> Num:
    """Capital cost of one accelerator on its price basis (`price_basis`): the catalog's purchase range, the
    silicon model's cost for a design or an in-house chip's reference design (NRE over `volume`), or the
    ownership cost implied from a rental rate."""
    from tokenfab.silicon import resolve_design
    from tokenfab.silicon.build import DEFAULT_VOLUME, analyse
    basis = price_basis(chip)
    if basis.kind == "design":
        design = resolve_design(chip.sources["design_path"])
        return analyse(design, d, volume or DEFAULT_VOLUME).unit_cost_with_nre
    if basis.kind == "internal-cost":
        design = resolve_design(_record(chip)["price_usd"]["design"])
        return analyse(design, d, volume or DEFAULT_VOLUME, check=False).unit_cost_with_nre
    if basis.kind == "cloud-implied":
        return implied_purchase_price(chip, d)
    p = chip.price_usd
    assert p is not None
    return d.triangular(f"price:{chip.id}", p.low, p.value, p.high)


_PRICE_RANGES: dict[str, Range] = {}


def _price_range(chip: Chip) -> Range:
    key = chip.sources.get("design_path", chip.id)
    if key not in _PRICE_RANGES:
        nominal = float(accelerator_price(chip, Draws()))
        lo, _, hi = percentiles(accelerator_price(chip, Draws(n=2000, seed=0)))
        _PRICE_RANGES[key] = Range(nominal, min(lo, nominal), max(hi, nominal))
    return _PRICE_RANGES[key]


def price_range(chip: Chip) -> Range:
    """Nominal capital cost and its P10-P90 for screens that take one figure per chip (design search, fleet):
    the catalog range for a purchase price, else the spread of the derived cost. `EconomicsError` if none."""
    if price_basis(chip).kind == "purchase":
        assert chip.price_usd is not None
        return chip.price_usd
    return _price_range(chip)


def token_cost(srv: Serving, d: Draws, utilisation: float = DEFAULT_UTILISATION,
               volume: float | None = None, cluster: float | None = None, price: Num | None = None,
               throughput_scale: Num = 1.0) -> TokenCost:
    """$ per million input and output tokens at `utilisation` (share of hours at full throughput), the network sized
    for `cluster` accelerators (default: the catalog's `network_cluster_chips`). `price` replaces the chip's price
    basis (a custom chip bought from a partner); `throughput_scale` is the share of the modelled throughput the
    chip's software delivers."""
    if not 0 < utilisation <= 1:
        raise EconomicsError(f"utilisation {utilisation!r}: allowed 0 < u <= 1")
    if cluster is not None and not cluster >= 1:
        raise EconomicsError(f"cluster {cluster!r}: allowed 1 or more accelerators")
    chip = srv.chip
    tdp = chip_tdp(chip, d)
    basis = price_basis(chip)
    busy = srv.busy_power_w * d.triangular("power_model_error", 0.85, 1.0, 1.15)
    hr = hourly_cost(accelerator_price(chip, d, volume) if price is None else price, tdp, busy, d, utilisation,
                     basis.includes, chip_network(chip, d, cluster))
    usd_s = hr.total / 3600.0
    out_tps = srv.out_tps * utilisation * throughput_scale
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
    return TokenCost(srv, hr, utilisation, blended, per_in, per_out, cloud, basis)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BreakEven:
    """When a custom design serving a demand costs less than serving it on a GPU."""

    gpu: TokenCost
    custom: TokenCost
    demand_tokens_per_day: float
    gpus_needed: int
    customs_needed: int  # median over the draws (the software maturity is drawn)
    volume: Num        # custom chips whose lifetime saving repays the one-off and software costs (inf: never)
    years: Num         # time at which the custom fleet's cumulative cost drops below the GPUs' (inf: never)
    gpu_life_cost: Num     # one GPU over the depreciation life (TCO)
    custom_life_cost: Num  # one custom chip over the depreciation life (TCO, without NRE)


def break_even(gpu: Serving, custom: Serving, demand_tokens_per_day: float, d: Draws,
               utilisation: float = DEFAULT_UTILISATION, gpu_price_scale: float = 1.0,
               terms: CustomTerms | None = None) -> BreakEven:
    """Break-even volume and time of a custom design against a GPU for a demand in output tokens/day.

    The custom chip is bought as `terms` say (default: from a Broadcom-style partner, first generation): each
    chip at the partner's price, the buyer's share of the NRE and the software NRE up front, the software
    team every year, and only `software_maturity` of the throughput a mature stack would reach (more chips).
    Both fleets cost their hourly TCO (annualised capex + opex). Time: one-off cost / hourly saving of the
    custom fleet net of the software run cost. Volume: custom chips over whose life the saving per chip
    repays the one-off cost and the software run cost of that life."""
    from tokenfab.silicon import resolve_design
    from tokenfab.silicon.build import analyse
    terms = terms or CustomTerms()
    if demand_tokens_per_day <= 0:
        raise EconomicsError("demand must be a positive number of output tokens per day")
    if "design_path" not in custom.chip.sources:
        raise EconomicsError(f"--design {custom.chip.id!r} is a catalog chip: give a design YAML or shipped design id")
    maturity = software_maturity(d, terms.generation)
    custom_tps = custom.out_tps * maturity        # what the first stacks deliver of the modelled throughput
    n_gpu = int(np.ceil(demand_tokens_per_day / (gpu.out_tps * utilisation * 86400.0)))
    n_cus = np.ceil(demand_tokens_per_day / (custom_tps * utilisation * 86400.0))
    design = resolve_design(custom.chip.sources["design_path"])
    report = analyse(design, d, volume=max(int(np.max(n_cus)), 1))
    g_hr = _hourly(gpu, gpu_price_scale * accelerator_price(gpu.chip, d), d, utilisation, max(n_gpu, 1))
    c_hr = _hourly(custom, partner_unit_price(report.unit.total, d, terms), d, utilisation,
                   max(int(np.max(n_cus)), 1))
    masks = d("mask_set_usd", design.node) if terms.slip_months > 0 else 0.0
    one_time = buyer_nre(report.nre, masks, d, terms)
    run_h = software_run_usd_per_hour(d)
    life_h = d("depreciation_years") * HOURS_PER_YEAR
    # per custom chip, the GPUs it replaces cost (throughput ratio) x their hourly TCO
    saving_per_chip = custom_tps / gpu.out_tps * g_hr - c_hr
    volume = np.where(saving_per_chip > 0,
                      (one_time + run_h * life_h) / np.where(saving_per_chip > 0, saving_per_chip, 1.0) / life_h,
                      np.inf)
    fleet_saving = n_gpu * g_hr - n_cus * c_hr - run_h
    years = np.where(fleet_saving > 0, one_time / np.where(fleet_saving > 0, fleet_saving, 1.0) / HOURS_PER_YEAR,
                     np.inf)
    n_cus_p50 = int(np.median(n_cus))
    # the custom fleet's $/Mtok: each chip at the partner's price plus its share of the one-off and the software
    # team over the chip's life
    buyer_price = (partner_unit_price(report.unit.total, d, terms)
                   + (one_time + run_h * life_h) / np.maximum(n_cus, 1))
    return BreakEven(token_cost(gpu, d, utilisation, cluster=max(n_gpu, 1)),
                     token_cost(custom, d, utilisation, cluster=max(n_cus_p50, 1), price=buyer_price,
                                throughput_scale=maturity),
                     demand_tokens_per_day, n_gpu, n_cus_p50, volume, years, g_hr * life_h, c_hr * life_h)


def _hourly(srv: Serving, price: Num, d: Draws, utilisation: float, cluster: float | None = None) -> Num:
    """Hourly TCO of one chip of a fleet of `cluster` (its network sized for that fleet)."""
    busy = srv.busy_power_w * d.triangular("power_model_error", 0.85, 1.0, 1.15)
    return hourly_cost(price, chip_tdp(srv.chip, d), busy, d, utilisation, price_basis(srv.chip).includes,
                       chip_network(srv.chip, d, cluster)).total


# ---- a custom chip bought through a design partner (or built in-house), and time -------------------------

PARTNERS = ("broadcom-style", "in-house")


@dataclass(frozen=True)
class CustomTerms:
    """How a custom chip is bought. `broadcom-style`: a design partner sells each packaged chip at its manufacturing
    cost x (1 + margin / (1 - margin)) (`partner_gross_margin`) and funds `partner_nre_share` of the hardware NRE
    itself; `in-house`: the buyer pays the manufacturing cost and all of the NRE. Either way the buyer pays the
    software (`software_nre_usd` once, `software_run_usd_per_year` every year), gets `software_maturity` of the
    efficiency a mature stack would reach, and a generation g > 1 pays (1 - `nre_reuse_per_generation`)^(g-1) of
    the first generation's NRE. A tape-out slip costs a respin's mask set and the software team's slipped months."""

    partner: str = "broadcom-style"
    generation: int = 1
    slip_months: float = 0.0

    def __post_init__(self) -> None:
        if self.partner not in PARTNERS:
            raise EconomicsError(f"custom.partner {self.partner!r}: allowed {', '.join(PARTNERS)}")
        if self.generation < 1:
            raise EconomicsError(f"custom.generation {self.generation!r}: a generation is 1 or more")
        if self.slip_months < 0:
            raise EconomicsError(f"tape-out slip {self.slip_months!r} months: 0 or more")


def partner_unit_price(unit_cost: Num, d: Draws, terms: CustomTerms = CustomTerms()) -> Num:
    """What the buyer pays per packaged chip: the manufacturing cost, plus the partner's gross margin on its price."""
    if terms.partner == "in-house":
        return unit_cost
    return unit_cost / (1.0 - d("partner_gross_margin"))


def buyer_nre(hardware_nre: Num, mask_set_usd: Num, d: Draws, terms: CustomTerms = CustomTerms()) -> Num:
    """The buyer's one-off cost: its share of the hardware NRE plus the software NRE (less what a later generation
    reuses), plus, after a tape-out slip, a respin's mask set and the software team's run cost for the slip."""
    share = 1.0 if terms.partner == "in-house" else 1.0 - d("partner_nre_share")
    one_off = hardware_nre * share + d("software_nre_usd")
    if terms.generation > 1:
        one_off = one_off * (1.0 - d("nre_reuse_per_generation")) ** (terms.generation - 1)
    if terms.slip_months > 0:
        one_off = one_off + mask_set_usd + d("software_run_usd_per_year") * terms.slip_months / 12.0
    return one_off


def software_run_usd_per_hour(d: Draws) -> Num:
    """The yearly software cost (compiler, kernels, runtime, people) per hour."""
    return d("software_run_usd_per_year") / HOURS_PER_YEAR


def software_maturity(d: Draws, generation: int = 1) -> Num:
    """Share of a mature stack's efficiency the custom chip's software reaches at this generation (< 1, rising)."""
    first = d("software_maturity_first_gen")
    if generation <= 1:
        return first
    return 1.0 - (1.0 - first) * (1.0 - d("software_maturity_gap_closed_per_generation")) ** (generation - 1)


def price_decline(d: Draws, years: Num) -> Num:
    """Multiplier on a catalog price `years` after its price date (`accelerator_price_decline_per_year`)."""
    return (1.0 - d("accelerator_price_decline_per_year")) ** np.maximum(years, 0.0)


def band(x: Num) -> tuple[float, float, float]:
    """P10, P50, P90 (inf-safe)."""
    return percentiles(x)


__all__ = ["DEFAULT_SAMPLES", "DEFAULT_UTILISATION", "PARTNERS", "SYSTEM_PARTS", "BreakEven", "CustomTerms",
           "EconomicsError", "Hourly", "PriceBasis", "Serving", "TokenCost", "accelerator_price", "annuity", "band",
           "break_even", "buyer_nre", "chip_tdp", "hourly_cost", "implied_purchase_price", "partner_unit_price",
           "price_basis", "price_decline", "price_range", "rental_rate", "serving", "software_maturity",
           "software_run_usd_per_hour", "system_capex", "token_cost"]
