"""Power of a design: energy per MAC by precision and node, DRAM/SRAM/link energy per bit, static share.

The TDP estimate is the power of the heaviest sustained load - every matrix unit at its most
power-hungry precision, DRAM streaming at full bandwidth, links busy - plus static power (leakage,
clock tree, always-on logic) in proportion to the silicon area. The MAC energy is arithmetic only;
two figures are fitted on published TDPs (`silicon.fit`): the factor operand delivery (registers,
buffers, wires) adds to it, and the static watts per mm2. The same coefficients drive the energy of
each step in the step-cost model (`hardware.ChipEnergy`).

A design's TDP is a module's, as accelerators are sold and racked (SXM, OAM, cards): it adds the loss of the
module's voltage regulators (`voltage_regulator_efficiency`) to what the silicon draws. A published TDP of a
bare package (`reference.tdp_scope: package`, e.g. MTIA v2) is checked without that loss, and without the
energy spent inside DRAM devices that sit on the board rather than in the package.

The load runs at the design's clock. A published chip's peak clock is often a boost clock it holds only
lightly loaded; where the clock it sustains under a dense matrix load at its TDP is published
(`reference.tdp_clock_ghz`), the check (`silicon.fit`) runs the load at that clock instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from tokenfab.constants import Draws, get
from tokenfab.hardware import ENERGY_CLASS
from tokenfab.silicon.design import PCIE_GT, ChipDesign
from tokenfab.tech import silicon_fit

Num = float | np.ndarray



def mac_pj(d: Draws, precision: str, node: str) -> Num:
    """Arithmetic energy of one MAC. TF32 multiplies FP16-sized significands: priced as a BF16 MAC times
    `tf32_mac_energy_vs_bf16`, not as the FP32 MAC its energy class names."""
    if precision == "tf32":
        return d("mac_energy_pj", "bf16", node) * d("tf32_mac_energy_vs_bf16")
    return d("mac_energy_pj", ENERGY_CLASS[precision], node)


def memory_bw(design: ChipDesign) -> float:
    """Peak DRAM bandwidth, B/s: stacks x bus width x pin rate (JEDEC rate unless the design sets one)."""
    mem = design.memory
    if mem.type == "none":
        return 0.0
    if mem.is_hbm:
        bus = get("hbm_stack_specs", mem.type if mem.type != "HBM2" else "HBM2e", "bus_bits").value
        pin = mem.gbps_per_pin or get("hbm_stack_specs", mem.type if mem.type != "HBM2" else "HBM2e",
                                      "gbps_per_pin").value
    else:
        bus, pin = 32.0, mem.gbps_per_pin or {"LPDDR5": 6.4, "GDDR6": 16.0, "GDDR7": 28.0}[mem.type]
    return mem.stacks * bus * pin * 1e9 / 8


def scaleup_bw(design: ChipDesign) -> float:
    """Per-chip scale-up bandwidth, one direction, B/s."""
    s = design.scaleup
    return s.links * s.lanes_per_link * s.lane_gbps * 1e9 / 8


def host_bw(design: ChipDesign) -> float:
    return design.host.lanes * PCIE_GT[design.host.gen] * 1e9 / 8


def d2d_bw(design: ChipDesign) -> float:
    """Total die-to-die traffic capacity of the package, one direction, B/s."""
    if design.chiplets.count == 1 and design.io_die is None:
        return 0.0
    io = design.io_die
    # each IO die sends d2d_tbps to its neighbours: the package's IO-die links carry count x d2d_tbps one
    # way, i.e. half of it in each of the two directions the link energy counts
    between_io = io.d2d_tbps * io.count / 2 if io is not None else 0.0
    return (design.chiplets.d2d_tbps * design.chiplets.count + between_io) * 1e12


@dataclass(frozen=True)
class PowerBreakdown:
    """Watts at the TDP load, by component."""

    matrix: Num
    vector: Num
    dram: Num
    sram: Num
    links: Num
    static: Num
    delivery: Num = 0.0  # voltage-regulator loss on the module

    @property
    def dynamic(self) -> Num:
        return self.matrix + self.vector + self.dram + self.sram + self.links

    @property
    def tdp(self) -> Num:
        return self.dynamic + self.static + self.delivery


def delivery_factor(scope: str = "module") -> float:
    """What a TDP of `scope` draws per watt reaching the silicon: 1/regulator efficiency for a module, 1 for a
    bare package."""
    return 1.0 / float(get("voltage_regulator_efficiency").value) if scope == "module" else 1.0


def offpackage_dram_w(design: ChipDesign, d: Draws) -> Num:
    """DRAM power spent in devices on the board, outside the package (LPDDR/GDDR; HBM sits in the package)."""
    mem = design.memory
    if mem.type == "none" or mem.is_hbm:
        return 0.0
    return memory_bw(design) * 8 * d("dram_pj_per_bit", mem.type) * 1e-12 * (1.0 - d("offpackage_dram_phy_share"))


def fixed_dynamic_power(design: ChipDesign, d: Draws) -> tuple[Num, Num, Num]:
    """DRAM, SRAM and link power at full bandwidth (what the operand factor does not scale)."""
    mem = design.memory
    bw = memory_bw(design)
    dram = bw * 8 * d("dram_pj_per_bit", mem.type) * 1e-12 if mem.type != "none" else 0.0
    sram = bw * 8 * 2 * d("sram_pj_per_bit") * 1e-12
    links = ((scaleup_bw(design) + host_bw(design)) * 2 * 8 * d("link_pj_per_bit", "serdes")
             + d2d_bw(design) * 2 * 8 * d("link_pj_per_bit", "d2d")) * 1e-12
    return dram, sram, links


def compute_power_bare(design: ChipDesign, d: Draws) -> tuple[Num, Num]:
    """Matrix and vector power at full rate, arithmetic energy only (before the operand factor)."""
    m = design.matrix
    hz = design.clock_ghz * 1e9
    cells = m.cells * design.cores
    per_cell = reduce(np.maximum, [rate * mac_pj(d, p, design.node) for p, rate in m.precisions.items()])
    matrix = cells * hz * per_cell * 1e-12
    lanes = design.vector.lanes_per_core + 4 * design.vector.fp64_lanes_per_core
    vector = lanes * design.cores * hz * mac_pj(d, "fp32", design.node) * 1e-12 * d("vector_duty_at_tdp")
    return matrix, vector


def power(design: ChipDesign, d: Draws, area_mm2: Num, factor: float | None = None,
          leakage: float | None = None) -> PowerBreakdown:
    """Component power at the TDP load, static power from the package's silicon area.

    `factor` and `leakage` override the fitted operand factor and static W/mm2 (for the fit)."""
    fit = silicon_fit()
    k = fit["operand_energy_factor"]["value"] if factor is None else factor
    w_mm2 = fit["static_w_per_mm2"]["value"] if leakage is None else leakage
    err = 1.0
    if factor is None:
        e = fit["tdp_error"]
        err = d.triangular("tdp_error", 1.0 + e["p10"], 1.0, 1.0 + e["p90"])
    matrix, vector = compute_power_bare(design, Draws())  # pinned by the fit, like the area constants
    dram, sram, links = fixed_dynamic_power(design, Draws())
    parts = (k * matrix * err, k * vector * err, dram * err, sram * err, links * err, w_mm2 * area_mm2 * err)
    return PowerBreakdown(*parts, delivery=sum(parts) * (delivery_factor() - 1.0))


__all__ = ["PowerBreakdown", "delivery_factor", "memory_bw", "offpackage_dram_w", "power", "scaleup_bw"]
