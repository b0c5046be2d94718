"""Die area of a design: MAC arrays, vector lanes, SRAM, memory PHYs, SerDes, die-to-die, uncore.

Each figure is NumPy arithmetic on constants from a `Draws`, so the same code gives the nominal area
or 10,000 Monte Carlo samples at once. Logic (MAC cells and vector lanes) is sized at N7 and scaled
by logic density. Two figures no datasheet gives are fitted on published dies (`silicon.fit`):

- the operand ports of a matrix array. A rows x cols array of MAC cells is fed at its edges: each row
  and each column needs an operand port (register-file or buffer read port, operand staging, the
  accumulator/drain stage), so the delivery hardware grows with rows + cols while the arithmetic grows
  with rows x cols. A GPU's 16x16 tensor core pays 32 ports per 256 cells, a 320x320 systolic array
  640 per 102,400: the reason a streaming chip packs several times more MACs per mm2 (H. T. Kung,
  "Why systolic architectures?", IEEE Computer 1982). The fitted figure is the area of one port in
  MAC cells (`operand_port_cells`).
- the fixed control block every package carries (management and control processors, DMA, host
  interface logic, NoC hubs), which dominates small chips (`control_block_mm2`).

Base dies that carry stacked compute dies (MI300X's IO dies under its XCDs) are at least as large as
the dies bonded on them: what they hold themselves (cache, fabric, control) sits under that
footprint, while their PHYs (memory, SerDes, links to the other base dies) sit at the die edge beyond
it, facing the HBM stacks and the neighbouring dies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from tokenfab.constants import Draws
from tokenfab.silicon.design import ChipDesign
from tokenfab.tech import silicon_fit

Num = float | np.ndarray
MB_BITS = 8 * 2**20 / 1e6  # Mb in one MiB


@dataclass(frozen=True)
class DieArea:
    """One kind of die (compute or IO) and how many of it the package holds; areas in mm2."""

    kind: str
    node: str
    count: int
    cores: int            # cores on one die, spares included
    logic: Num            # core logic (MAC arrays with their operand ports, vector lanes)
    sram: Num
    phy: Num              # memory PHYs, SerDes, host lanes
    d2d: Num              # die-to-die PHYs (none on a bonded face of a stacked die)
    bare_logic: Num       # MAC cells and vector lanes, before the matrix units' operand ports
    block: Num = 0.0      # this die's share of the package's fixed control block (fitted)
    uncore: Num = 0.1     # share of the die for clocking, power, pads, NoC channels, white space
    core_sram: Num = 0.0  # SRAM area of one core
    error: Num = 1.0      # model error multiplier (Monte Carlo only)
    footprint: Num = 0.0  # base dies: area of the dies stacked on one of them (their error included)

    @property
    def total(self) -> Num:
        own = (self.logic + self.sram + self.phy + self.d2d + self.block) / (1.0 - self.uncore) * self.error
        if not np.any(self.footprint):
            return own
        # what the base die holds itself sits under the stacked dies; its PHYs and links at the edge beyond
        under = (self.logic + self.sram + self.block) / (1.0 - self.uncore) * self.error
        return np.maximum(self.footprint, under) + own - under

    @property
    def core_area(self) -> Num:
        """Area of one core (logic and its SRAM), the unit a spare core replaces."""
        return (self.logic / max(self.cores, 1) + self.core_sram) / (1.0 - self.uncore)


def fitted(name: str) -> float:
    return float(silicon_fit()[name]["value"])


def model_error(d: Draws, name: str) -> Num:
    """Multiplier 1 + relative error, drawn over the leave-one-out error range of the fit."""
    err = silicon_fit()[name]
    return d.triangular(name, 1.0 + err["p10"], 1.0, 1.0 + err["p90"])


def node_scale(d: Draws, node: str) -> Num:
    """Area of a logic cell at `node` relative to N7: the peak density ratio, corrected by what products of
    one line realise across the nodes (`logic_density_realised_vs_peak`)."""
    peak = d("logic_density_mtr_mm2", "n7") / d("logic_density_mtr_mm2", node)
    return peak * d("logic_density_realised_vs_peak", "n7") / d("logic_density_realised_vs_peak", node)


def sram_mb_per_mm2(d: Draws, node: str) -> Num:
    """Realised SRAM density: test-macro density scaled by bitcell area, times product efficiency."""
    macro = d("sram_macro_density_n5_mb_mm2") * d("sram_bitcell_um2", "n5") / d("sram_bitcell_um2", node)
    return macro * d("sram_product_efficiency")


def mac_cell_um2(design: ChipDesign, d: Draws) -> Num:
    """One MAC cell of the design's matrix units at N7."""
    m = design.matrix
    extra = len(m.precisions) - 1
    # a cell must deliver each precision's rate: it is as large as the most demanding of them
    cell = reduce(np.maximum, [rate * d("mac_area_n7_um2", p) for p, rate in m.precisions.items()])
    return cell * (1.0 + d("multiprecision_area_overhead") * extra)


def bare_core_logic_um2(design: ChipDesign, d: Draws) -> Num:
    """One core's MAC cells and vector lanes at N7, without the matrix units' operand ports."""
    vec = (design.vector.lanes_per_core * d("vector_lane_area_n7_um2", "fp32")
           + design.vector.fp64_lanes_per_core * d("vector_lane_area_n7_um2", "fp64"))
    return mac_cell_um2(design, d) * design.matrix.cells + vec


def operand_port_cells_um2(design: ChipDesign, d: Draws) -> Num:
    """One core's matrix-unit edge, in MAC-cell areas at N7 x ports: cell x units x (rows + cols).

    Multiplied by the fitted area of one port (in cells) it is the operand-delivery logic of the core."""
    m = design.matrix
    return mac_cell_um2(design, d) * m.units_per_core * (m.rows + m.cols)


def _memory_phy(design: ChipDesign, d: Draws) -> Num:
    mem = design.memory
    if mem.type == "none":
        return 0.0
    if mem.is_hbm:
        return mem.stacks * d("hbm_phy_area_mm2", mem.type)
    return mem.stacks * d("dram_phy_area_mm2_per_channel", mem.type)


def _io_phy(design: ChipDesign, d: Draws) -> Num:
    lanes = design.scaleup.links * design.scaleup.lanes_per_link + design.host.lanes
    return _memory_phy(design, d) + lanes * d("serdes_area_mm2_per_lane")


def die_areas(design: ChipDesign, d: Draws, port: float | None = None, block: float | None = None) -> list[DieArea]:
    """The package's dies: compute dies (and IO dies if the design has them), with area breakdowns.

    `port` and `block` override the fitted operand-port area (MAC cells per port) and control-block
    area (for the fit). The building-block constants are pinned at their catalog values: the fit
    absorbs their errors, and the Monte Carlo draws the fit's leave-one-out error instead (`area_error`)."""
    err = model_error(d, "area_error") if port is None else 1.0
    d = Draws()
    q = fitted("operand_port_cells") if port is None else port
    c = fitted("control_block_mm2") if block is None else block
    uncore = d("uncore_area_fraction")
    n = design.chiplets.count
    cores = (design.cores + design.spare_cores) // n
    node = design.node
    scale = cores * node_scale(d, node) / 1e6
    bare = bare_core_logic_um2(design, d) * scale
    logic = bare + q * operand_port_cells_um2(design, d) * scale
    core_sram = design.sram.per_core_mb * MB_BITS / sram_mb_per_mm2(d, node)
    io = design.io_die
    stacked = io is not None and io.stacked
    # a bonded face of a stacked die needs no PHY: its links are bond pads and vias inside the footprint
    d2d_area = (design.chiplets.d2d_tbps * d("d2d_area_mm2_per_tbps")
                if (n > 1 or io is not None) and not stacked else 0.0)
    shared_sram_mb = design.sram.shared_mb
    if io is None:
        sram = cores * core_sram + shared_sram_mb / n * MB_BITS / sram_mb_per_mm2(d, node)
        phy = _io_phy(design, d) / n
        return [DieArea("compute", node, n, cores, logic, sram, phy, d2d_area, bare, c / n, uncore, core_sram,
                        err)]
    compute = DieArea("compute", node, n, cores, logic, cores * core_sram, 0.0, d2d_area, bare, 0.0, uncore,
                      core_sram, err)
    io_sram = shared_sram_mb / io.count * MB_BITS / sram_mb_per_mm2(d, io.node)
    # links to the compute dies (a PHY unless they are bonded on top) and to the other base dies (a PHY)
    to_compute = 0.0 if stacked else design.chiplets.d2d_tbps * n / io.count
    io_d2d = (to_compute + io.d2d_tbps) * d("d2d_area_mm2_per_tbps")
    footprint = compute.total * n / io.count if stacked else 0.0
    io_die = DieArea("io", io.node, io.count, 0, 0.0, io_sram, _io_phy(design, d) / io.count, io_d2d, 0.0,
                     c / io.count, uncore, 0.0, err, footprint)
    return [compute, io_die]


def total_area(dies: list[DieArea]) -> Num:
    """Silicon area of one package, all dies."""
    return sum(die.total * die.count for die in dies)


def interposer_area(design: ChipDesign, dies: list[DieArea], d: Draws) -> Num:
    """Interposer (or substrate) area: dies with 10% spacing plus the HBM stacks' footprints."""
    stacks = design.memory.stacks if design.memory.is_hbm else 0
    on_interposer = [die for die in dies if not (design.io_die and design.io_die.stacked and die.kind == "compute")]
    return total_area(on_interposer) * 1.1 + stacks * d("hbm_stack_footprint_mm2")


__all__ = ["DieArea", "die_areas", "interposer_area", "total_area"]
