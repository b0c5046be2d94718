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

from tokenfab.constants import Draws
from tokenfab.economics import EconomicsError, accelerator_price, price_basis, price_range
from tokenfab.hardware import Chip, all_chips
from tokenfab.perf.params import EffParams, shipped_calibration
from tokenfab.search.problem import CHIP_AXES, DesignProblem, parse_memory
from tokenfab.silicon import resolve_design
from tokenfab.silicon.build import analyse, to_chip
from tokenfab.silicon.design import ChipDesign, DesignError


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
        params = shipped_calibration().for_chip(chip)
        limit = problem.constraints.get("power_w")
        reason = (f"constraints.power_w: TDP {tdp:,.0f} W exceeds the {limit:,.0f} W limit"
                  if limit and tdp > limit else None)
        return Candidate(key, label, True, chip, float(report.unit.total), float(report.nre), tdp, params, axes,
                         design.model_dump(exclude_none=True), reason)
    field_name = "constraints.max_chiplets" if "reticle" in last_err or "chiplets" in last_err else "design"
    return Candidate(key, label, True, None, 0.0, 0.0, 0.0, None, axes, raw, f"{field_name}: {last_err}")


def catalog_candidates(problem: DesignProblem) -> list[Candidate]:
    """Every catalog accelerator, on its price basis (economics.price_basis: a purchase price, an ownership
    cost implied from a cloud rate, or an in-house chip's reference design); those with no basis or no TDP
    cannot be priced and say so."""
    out = []
    for chip in sorted(all_chips(), key=lambda c: c.id):
        params = shipped_calibration().for_chip(chip)
        try:
            price = price_range(chip).value if chip.tdp_w else None
            included = tuple(sorted(price_basis(chip).includes))
        except EconomicsError:
            price, included = None, ()
        if price is None or not chip.tdp_w:
            out.append(Candidate("g-" + chip.id, chip.id, False, chip, 0.0, 0.0, float(chip.tdp_w or 0), params,
                                 infeasible="catalog: no price basis (purchase, cloud rate or design) or no TDP "
                                            "to price it"))
            continue
        out.append(Candidate("g-" + chip.id, chip.id, False, chip, price, 0.0, chip.tdp_w, params,
                             included=included))
    return out


def price_draws(cand: Candidate, d: Draws, volume: float) -> tuple[Any, Any]:
    """Unit price and NRE under the constants in `d` (Monte Carlo bands of the final answers)."""
    if cand.custom:
        design = ChipDesign.model_validate(cand.design)
        rep = analyse(design, d, volume=max(volume, 1.0), check=False)
        return rep.unit.total, rep.nre
    assert cand.chip is not None
    return accelerator_price(cand.chip, d), 0.0
