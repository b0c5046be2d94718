"""What one package costs to make, and what the design costs once (NRE).

Dies per wafer (gross dies on a 300 mm wafer with edge loss), yield (negative binomial with
clustering alpha by default; Murphy and Poisson selectable) with spare cores repairing defective
ones, wafer price by node -> known-good-die cost; then HBM, interposer packaging, assembly yield,
test and board. All NumPy arithmetic over `Draws`, so it vectorises over Monte Carlo samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.constants import Draws
from tokenfab.silicon.area import DieArea, interposer_area
from tokenfab.silicon.design import ChipDesign

Num = float | np.ndarray
YIELD_MODELS = ("negative-binomial", "murphy", "poisson")


def dies_per_wafer(area_mm2: Num, d: Draws) -> Num:
    """Gross dies per wafer: wafer area over die area, less the partial dies lost at the edge."""
    diameter = 300.0 - 2.0 * d("wafer_edge_exclusion_mm")
    side = np.sqrt(area_mm2) + d("scribe_mm")
    a = side * side
    return np.maximum(np.floor(np.pi * (diameter / 2) ** 2 / a - np.pi * diameter / np.sqrt(2.0 * a)), 0.0)


def die_yield(area_mm2: Num, d0_per_cm2: Num, model: str = "negative-binomial", alpha: Num = 3.0) -> Num:
    """Fraction of dies with no killer defect: Poisson, Murphy, or negative binomial (clustering alpha)."""
    ad = np.asarray(area_mm2, dtype=float) / 100.0 * d0_per_cm2
    if model == "poisson":
        return np.exp(-ad)
    if model == "murphy":
        safe = np.where(ad > 0, ad, 1.0)
        return np.where(ad > 0, ((1.0 - np.exp(-safe)) / safe) ** 2, 1.0)
    if model == "negative-binomial":
        return (1.0 + ad / alpha) ** (-alpha)
    raise ValueError(f"yield model {model!r}: allowed {', '.join(YIELD_MODELS)}")


def repaired_yield(die: DieArea, spares: int, d0: Num, model: str, alpha: Num) -> Num:
    """Yield of a die whose cores include `spares` fused-off extras: the rest of the die must be clean
    and at most `spares` of its cores may be defective."""
    if spares <= 0 or die.cores == 0:
        return die_yield(die.total, d0, model, alpha)
    core = die.core_area
    rest = np.maximum(die.total - core * die.cores, 0.0)
    p_core_ok = die_yield(core, d0, model, alpha)
    from scipy import stats  # imported here: scipy.stats costs most of a command's start-up
    return die_yield(rest, d0, model, alpha) * stats.binom.cdf(spares, die.cores, 1.0 - p_core_ok)


@dataclass(frozen=True)
class DieCost:
    kind: str
    count: int
    area: Num
    dies_per_wafer: Num
    yield_: Num
    kgd_usd: Num          # one known-good die


@dataclass(frozen=True)
class UnitCost:
    """Manufacturing cost of one packaged accelerator (USD), before NRE."""

    dies: list[DieCost]
    silicon: Num
    memory: Num
    packaging: Num
    interposer_mm2: Num
    assembly_loss: Num
    test: Num
    board: Num

    @property
    def total(self) -> Num:
        return self.silicon + self.memory + self.packaging + self.assembly_loss + self.test + self.board


def die_costs(design: ChipDesign, dies: list[DieArea], d: Draws, model: str = "negative-binomial") -> list[DieCost]:
    alpha = d("yield_nb_alpha_default")
    out = []
    for die in dies:
        d0 = d("defect_density_per_cm2", die.node)
        spares = design.spare_cores // design.chiplets.count if die.kind == "compute" else 0
        y = repaired_yield(die, spares, d0, model, alpha)
        dpw = dies_per_wafer(die.total, d)
        good = np.maximum(dpw * y, 1e-9)
        out.append(DieCost(die.kind, die.count, die.total, dpw, y, d("wafer_price_usd", die.node) / good))
    return out


def memory_cost(design: ChipDesign, d: Draws) -> Num:
    mem = design.memory
    if mem.type == "none":
        return 0.0
    gb = mem.stacks * mem.gb_per_stack * 2**30 / 1e9
    name = "hbm_price_usd_per_gb" if mem.is_hbm else "dram_price_usd_per_gb"
    return gb * d(name, mem.type)


def unit_cost(design: ChipDesign, dies: list[DieArea], d: Draws, model: str = "negative-binomial") -> UnitCost:
    """Known-good dies + memory + packaging, grossed up for assembly yield, + test + board."""
    costs = die_costs(design, dies, d, model)
    silicon = sum(c.kgd_usd * c.count for c in costs)
    memory = memory_cost(design, d)
    inter = interposer_area(design, dies, d)
    packaging = inter * d("packaging_usd_per_mm2", design.packaging)
    on_package = silicon + packaging + (memory if design.memory.is_hbm else 0.0)
    loss = on_package * (1.0 / d("package_assembly_yield") - 1.0)
    return UnitCost(costs, silicon, memory, packaging, inter, loss, d("test_usd_per_package"),
                    d("board_usd_per_accelerator"))


def nre(design: ChipDesign, d: Draws) -> Num:
    """One-off cost of the design: masks and IP for each distinct die, plus the design effort."""
    kinds = [design.node] + ([design.io_die.node] if design.io_die else [])
    return sum(d("mask_set_usd", node) + d("ip_license_usd") for node in kinds) + d("design_nre_usd")


def cost_at_volume(unit: Num, nre_usd: Num, volume: Num) -> Num:
    """Per-accelerator cost with the NRE spread over `volume` units."""
    return unit + nre_usd / np.maximum(volume, 1.0)


__all__ = ["YIELD_MODELS", "UnitCost", "cost_at_volume", "die_yield", "dies_per_wafer", "nre", "unit_cost"]
