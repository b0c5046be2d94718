"""Energy of a step from its components: math by precision, DRAM and SRAM traffic, links, static power.

The counts come from the operator table (FLOPs at each operator's precision, bytes from device
memory, all-reduce bytes) and the coefficients from the chip's `ChipEnergy` (the silicon model's
energy per MAC by node and precision, per-bit DRAM/SRAM/link energy, static watts). Average power
never exceeds the chip's TDP: a chip at its power limit slows its clock rather than exceed it.
"""

from __future__ import annotations

import numpy as np

from tokenfab.constants import Draws
from tokenfab.hardware import Chip
from tokenfab.perf.ops import OpTable


def host_power_w(chip: Chip | None = None) -> float:
    """Server power at the wall per accelerator slot besides the accelerator: CPUs, DRAM, fans, PSU loss, and the
    chip's share of its NICs and scale-up switches (`network.chip_network`, the catalog's default cluster)."""
    key = chip.id if chip is not None else ""
    if key not in _HOST_W:
        from tokenfab.network import chip_network
        d = Draws()
        net = chip_network(chip, d)
        _HOST_W[key] = float(d("server_host_power_w_per_accelerator") + net.nic_w + net.scaleup_w)
    return _HOST_W[key]


_HOST_W: dict[str, float] = {}


def device_energy(table: OpTable, chip: Chip, stage_time: np.ndarray) -> np.ndarray:
    """Joules one device spends on each step (arrays (S,)), capped at TDP x step time."""
    e = chip.energy
    if e is None:
        return np.zeros_like(stage_time)
    math = (table.flops * table.pj_per_flop).sum(axis=1)
    # every byte from DRAM is written to and read from on-chip SRAM once on its way to the units
    traffic = table.bytes.sum(axis=1) * 8.0 * (e.dram_pj_per_bit + 2.0 * e.sram_pj_per_bit)
    # an all-reduce sends and receives about its payload per chip
    links = table.comm_calls * table.comm_bytes * 2.0 * 8.0 * e.link_pj_per_bit
    joules = (math + traffic + links) * 1e-12 + e.static_w * stage_time
    return np.minimum(joules, e.cap_w * stage_time)


__all__ = ["device_energy"]
