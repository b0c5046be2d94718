"""Turn a `ChipDesign` into its silicon report (area, yield, cost, power) and into a `Chip`.

The `Chip` is what every other model consumes, so a design goes wherever a catalog accelerator
goes (`predict`, `compare`, `tco`). Physical limits are checked here: a die beyond the reticle, or
HBM stacks that do not fit the interposer, are design errors naming the field to change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.constants import Draws
from tokenfab.hardware import Chip, Range, energy_coefficients
from tokenfab.silicon import area as A
from tokenfab.silicon import cost as C
from tokenfab.silicon import power as P
from tokenfab.silicon.design import ChipDesign, DesignError
from tokenfab.units import GiB

Num = float | np.ndarray
DEFAULT_VOLUME = 100_000  # accelerators built over the design's life, for the NRE share


@dataclass(frozen=True)
class SiliconReport:
    """Everything the silicon model says about a design, nominal (floats) or sampled (arrays)."""

    design: ChipDesign
    dies: list[A.DieArea]
    area: Num                 # all silicon of one package, mm2
    interposer: Num
    unit: C.UnitCost
    nre: Num
    power: P.PowerBreakdown
    volume: float
    yield_model: str

    @property
    def tdp(self) -> Num:
        return self.design.tdp_w if self.design.tdp_w else self.power.tdp

    @property
    def unit_cost_with_nre(self) -> Num:
        return C.cost_at_volume(self.unit.total, self.nre, self.volume)


def check_limits(design: ChipDesign, dies: list[A.DieArea], d: Draws) -> None:
    """Nominal physical limits: every die within the reticle, dies and stacks within the interposer."""
    reticle = float(d("reticle_limit_mm2"))
    for die in dies:
        area = float(np.median(die.total))
        if area > reticle:
            if die.kind == "compute":
                need = int(np.ceil(area * die.count / reticle))
                raise DesignError(f"design field 'chiplets.count': the compute die is {area:,.0f} mm2, beyond the "
                                  f"{reticle:,.0f} mm2 reticle limit; split it into at least {need} chiplets "
                                  "or shrink cores/SRAM")
            raise DesignError(f"design field 'io_die.count': each IO die is {area:,.0f} mm2, beyond the "
                              f"{reticle:,.0f} mm2 reticle limit; use more IO dies")
    limit = float(d("interposer_max_mm2", design.packaging))
    inter = float(np.median(A.interposer_area(design, dies, d)))
    if inter > limit:
        stack = float(d("hbm_stack_footprint_mm2"))
        room = int(max((limit - (inter - design.memory.stacks * stack * design.memory.is_hbm)) // stack, 0))
        field = "memory.stacks" if design.memory.is_hbm else "packaging"
        raise DesignError(f"design field {field!r}: dies and {design.memory.stacks} HBM stacks need "
                          f"{inter:,.0f} mm2 of interposer, beyond the {limit:,.0f} mm2 of {design.packaging}; "
                          f"allowed at most {room} stacks here (or packaging cowos-l)")


def analyse(design: ChipDesign, d: Draws | None = None, volume: float = DEFAULT_VOLUME,
            yield_model: str = "negative-binomial", check: bool = True) -> SiliconReport:
    """Area, yield, unit cost, NRE and power of a design under the constants in `d`."""
    d = d or Draws()
    if yield_model not in C.YIELD_MODELS:
        raise DesignError(f"yield model {yield_model!r}: allowed {', '.join(C.YIELD_MODELS)}")
    if volume < 1:
        raise DesignError(f"volume {volume!r}: a positive number of accelerators is required")
    dies = A.die_areas(design, d)
    if check and design.reference is None:  # a published chip exists; its estimate may overshoot a little
        check_limits(design, A.die_areas(design, Draws()), Draws())
    unit = C.unit_cost(design, dies, d, yield_model)
    silicon = A.total_area(dies)
    return SiliconReport(design, dies, silicon, A.interposer_area(design, dies, d), unit,
                         C.nre(design, d), P.power(design, d, silicon), float(volume), yield_model)


def peak_flops(design: ChipDesign) -> dict[str, float]:
    """Dense FLOP/s per precision: 2 x MAC cells x rate x clock (matrix), plus FP32 vector lanes."""
    hz = design.clock_ghz * 1e9
    cells = design.matrix.cells * design.cores
    flops = {p: 2.0 * cells * rate * hz for p, rate in design.matrix.precisions.items()}
    vec = 2.0 * design.vector.lanes_per_core * design.cores * hz
    if vec and vec > flops.get("fp32", 0.0):
        flops["fp32"] = vec
    if design.vector.fp64_lanes_per_core:
        flops["fp64"] = 2.0 * design.vector.fp64_lanes_per_core * design.cores * hz
    return flops


def to_chip(design: ChipDesign, report: SiliconReport | None = None) -> Chip:
    """The `Chip` every other model consumes: peaks, memory tiers, links, power, price."""
    report = report or analyse(design)
    mem = design.memory
    flops = peak_flops(design)
    tdp = float(report.tdp)
    hi = analyse(design, Draws(n=200, seed=1), report.volume, report.yield_model, check=False)
    cost = np.percentile(hi.unit_cost_with_nre, [10, 90])
    return Chip(
        id=design.id,
        name=design.label,
        vendor="custom design",
        family=design.family,
        peak_flops=flops,
        mem_bytes=mem.stacks * mem.gb_per_stack * GiB if mem.type != "none" else 0.0,
        mem_bw=P.memory_bw(design),
        sram_bytes=(design.sram.per_core_mb * design.cores + design.sram.shared_mb) * 2**20,
        scaleup_kind=design.scaleup.fabric if design.scaleup.links else "pcie",
        scaleup_bw=P.scaleup_bw(design),
        scaleup_domain=design.scaleup.domain if design.scaleup.links else 1,
        scaleout_bw=design.scaleout_gbps * 1e9 / 8,
        host_bw=P.host_bw(design),
        tdp_w=tdp,
        price_usd=Range(float(report.unit_cost_with_nre), float(cost[0]), float(cost[1])),
        cloud_usd_hr=None,
        sources={"design": f"silicon model of design {design.id!r}"},
        energy=energy_coefficients(design.node, mem.type, list(flops), tdp),
    )


__all__ = ["DEFAULT_VOLUME", "SiliconReport", "analyse", "check_limits", "peak_flops", "to_chip"]
