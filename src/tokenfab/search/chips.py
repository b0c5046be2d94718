"""Candidate chips: custom designs built from the space's axes, and the catalog's priced accelerators.

A custom chip is the template design with the searched fields replaced; the silicon model gives its
area, unit cost, NRE and TDP, and the constraints (power, reticle/chiplets, node) are checked here so
an infeasible chip carries the one constraint that rules it out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tokenfab import catalog
from tokenfab.constants import Draws
from tokenfab.economics import (
    HOURS_PER_YEAR,
    CustomTerms,
    EconomicsError,
    accelerator_price,
    annuity,
    buyer_nre,
    partner_unit_price,
    price_basis,
    price_decline,
    price_range,
    software_maturity,
    software_run_usd_per_hour,
)
from tokenfab.hardware import Chip, all_chips
from tokenfab.perf.params import EffParams, shipped_calibration
from tokenfab.search.problem import CHIP_AXES, DesignProblem, parse_memory
from tokenfab.silicon import resolve_design
from tokenfab.silicon.build import analyse, to_chip
from tokenfab.silicon.design import ChipDesign, DesignError
from tokenfab.units import month_index


@dataclass(frozen=True)
class Candidate:
    """One chip to screen: what it is, what one costs, and why it is ruled out (None if it is not)."""

    key: str
    label: str
    custom: bool
    chip: Chip | None
    unit_usd: float                 # purchase price (catalog) or unit manufacturing cost (design)
    nre_usd: float
    tdp_w: float
    params: EffParams | None
    axes: dict[str, Any] = field(default_factory=dict)
    design: dict[str, Any] | None = None
    infeasible: str | None = None
    included: tuple[str, ...] = ()  # system parts the unit price already holds (economics.SYSTEM_PARTS)
    mfg_usd: float = 0.0            # a design's manufacturing cost (unit_usd is what the buyer pays the partner)
    run_usd_h: float = 0.0          # a design's software run cost per hour (compiler, kernels, runtime, people)
    maturity: float = 1.0           # a design's software maturity (its steps take 1/maturity longer)
    family: str = "custom"          # custom | gpu | tpu | trainium | other
    availability: str | None = None  # first delivery (YYYY-MM) of a chip not shipping at the catalog's price date
    available: bool = True          # can be bought at the custom chip's first delivery
    buyable: bool = True            # sold or rented to others (not another company's in-house chip)
    decline_years: float = 0.0      # years of price decline from the catalog's price date to the delivery


# catalog vendor -> the family a study compares against (best GPU, best TPU, best Trainium)
FAMILIES = {"nvidia": "gpu", "amd": "gpu", "intel": "gpu", "google": "tpu", "aws": "trainium"}


def family_of(chip: Chip) -> str:
    return FAMILIES.get(chip.vendor.strip().lower(), "other")


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def design_dict(problem: DesignProblem, axes: dict[str, Any]) -> dict[str, Any]:
    """The template design with the searched fields set from `axes`."""
    base = resolve_design(problem.raw.get("template", "inference-hbm")).model_dump(exclude_none=True)
    base.pop("reference", None)
    kind, stacks, gb = parse_memory(axes["memory"])
    cores = int(axes["cores"])
    base.update(id=f"custom-{_key(axes)[:8]}", name=None, node=problem.constraints["node"],
                clock_ghz=float(axes["clock_ghz"]), cores=cores, spare_cores=max(cores // 16, 1),
                memory={"type": kind, "stacks": stacks, "gb_per_stack": gb},
                scaleout_gbps=float(axes["scaleout_gbps"]))
    base["sram"] = {**base.get("sram", {}), "shared_mb": float(axes["sram_shared_mb"])}
    base["scaleup"] = {**base.get("scaleup", {}), "links": int(axes["scaleup_links"]),
                       "domain": int(axes["scaleup_domain"])}
    base.pop("tdp_w", None)
    return base


def custom_candidate(problem: DesignProblem, axes: dict[str, Any]) -> Candidate:
    """Build and check one custom design; chiplets are the fewest (<= max_chiplets) that fit the reticle."""
    axes = {a: axes[a] for a in CHIP_AXES}
    key = "c-" + _key({"axes": axes, "node": problem.constraints["node"],
                       "template": problem.raw.get("template", "inference-hbm")})
    label = (f"{axes['cores']}c@{axes['clock_ghz']}GHz {axes['memory']} {axes['sram_shared_mb']}MB "
             f"su{axes['scaleup_links']}x{axes['scaleup_domain']} so{axes['scaleout_gbps']}")
    raw = design_dict(problem, axes)
    total = raw["cores"] + raw["spare_cores"]
    last_err = "no chiplet count divides the cores"
    for n in range(1, int(problem.constraints.get("max_chiplets", 1)) + 1):
        if total % n:
            continue
        raw["chiplets"] = {**raw.get("chiplets", {}), "count": n}
        if n > 1 and not raw["chiplets"].get("d2d_tbps"):
            raw["chiplets"]["d2d_tbps"] = 4.0
        try:
            design = ChipDesign.model_validate(raw)
            report = analyse(design)
        except (DesignError, ValueError) as err:
            last_err = str(err).splitlines()[0]
            continue
        tdp = float(report.tdp)
        chip = to_chip(design, report)
        d, terms = Draws(), problem.terms
        maturity = float(software_maturity(d, terms.generation))
        params = shipped_calibration().for_chip(chip)
        params = params.with_(time_scale=params.time_scale / maturity)
        limit = problem.constraints.get("power_w")
        reason = (f"constraints.power_w: TDP {tdp:,.0f} W exceeds the {limit:,.0f} W limit"
                  if limit and tdp > limit else None)
        unit = float(partner_unit_price(report.unit.total, d, terms))
        one_off = float(buyer_nre(report.nre, 0.0, d, terms))
        return Candidate(key, label, True, chip, unit, one_off, tdp, params, axes,
                         design.model_dump(exclude_none=True), reason, mfg_usd=float(report.unit.total),
                         run_usd_h=float(software_run_usd_per_hour(d)), maturity=maturity)
    field_name = "constraints.max_chiplets" if "reticle" in last_err or "chiplets" in last_err else "design"
    return Candidate(key, label, True, None, 0.0, 0.0, 0.0, None, axes, raw, f"{field_name}: {last_err}")


def catalog_candidates(problem: DesignProblem) -> list[Candidate]:
    """Every catalog accelerator, on its price basis (economics.price_basis: a purchase price, an ownership
    cost implied from a cloud rate, or an in-house chip's reference design); those with no basis or no TDP
    cannot be priced and say so."""
    out = []
    delivery, priced = problem.delivery_month(), problem.price_month
    for chip in sorted(all_chips(), key=lambda c: c.id):
        params = shipped_calibration().for_chip(chip)
        when = catalog.accelerators().get(chip.id, {}).get("availability")
        since = max(priced, month_index(str(when))) if when else priced
        timing = {"family": family_of(chip), "availability": str(when) if when else None,
                  "available": since <= delivery or not when, "decline_years": max(delivery - since, 0) / 12.0}
        try:
            price = price_range(chip).value if chip.tdp_w else None
            basis = price_basis(chip)
            included = tuple(sorted(basis.includes))
            timing["buyable"] = basis.kind != "internal-cost"
        except EconomicsError:
            price, included = None, ()
        if price is None or not chip.tdp_w:
            out.append(Candidate("g-" + chip.id, chip.id, False, chip, 0.0, 0.0, float(chip.tdp_w or 0), params,
                                 infeasible="catalog: no price basis (purchase, cloud rate or design) or no TDP "
                                            "to price it", **timing))
            continue
        price = float(price * price_decline(Draws(), timing["decline_years"]))
        out.append(Candidate("g-" + chip.id, chip.id, False, chip, price, 0.0, chip.tdp_w, params,
                             included=included, **timing))
    return out


@dataclass(frozen=True)
class Prices:
    """What a candidate costs under the constants of one `Draws`: per chip, once, per hour, and its maturity."""

    unit: Any               # paid per chip (partner price of a design; catalog price at the delivery date)
    nre: Any                # the buyer's one-off cost (0 for a catalog chip)
    run_h: Any              # software run cost per hour (0 for a catalog chip)
    maturity: Any           # software maturity (1 for a catalog chip)
    fixed_h: Any            # the NRE annualised like the hardware plus the run cost, per hour (0 for a catalog chip)


def price_draws(cand: Candidate, d: Draws, volume: float, terms: CustomTerms | None = None,
                years: Any = None, scale: Any = 1.0) -> Prices:
    """Unit price, NRE, software run cost and maturity under the constants in `d` (the answers' Monte Carlo).

    A design is priced on `terms` (default: the candidate's problem's, given by the caller); a catalog chip at its
    price `years` after the catalog's price date (default: the candidate's years to the delivery), times `scale`
    (a supply shock)."""
    if cand.custom:
        terms = terms or CustomTerms()
        design = ChipDesign.model_validate(cand.design)
        rep = analyse(design, d, volume=max(volume, 1.0), check=False)
        masks = d("mask_set_usd", design.node) if terms.slip_months > 0 else 0.0
        one_off = buyer_nre(rep.nre, masks, d, terms)
        run_h = software_run_usd_per_hour(d)
        fixed = one_off * annuity(d("cost_of_capital"), d("depreciation_years")) / HOURS_PER_YEAR + run_h
        return Prices(partner_unit_price(rep.unit.total, d, terms), one_off, run_h,
                      software_maturity(d, terms.generation), fixed)
    assert cand.chip is not None
    yrs = cand.decline_years if years is None else years
    return Prices(accelerator_price(cand.chip, d) * price_decline(d, yrs) * scale, 0.0, 0.0, 1.0, 0.0)


def fixed_per_hour(cand: Candidate, d: Draws | None = None) -> Any:
    """A design's fixed cost per hour at nominal constants: its NRE annualised plus its software run cost."""
    if not cand.custom:
        return 0.0
    d = d or Draws()
    return cand.nre_usd * annuity(d("cost_of_capital"), d("depreciation_years")) / HOURS_PER_YEAR + cand.run_usd_h
