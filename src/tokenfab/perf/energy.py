"""Energy of a step from its components: math by precision, DRAM and SRAM traffic, links, static power.

The counts come from the operator table (FLOPs at each operator's precision, bytes from device
memory, all-reduce bytes) and the coefficients from the chip's `ChipEnergy` (the silicon model's
energy per MAC by node and precision, per-bit DRAM/SRAM/link energy, static watts). Average power
never exceeds the chip's TDP: a chip at its power limit slows its clock rather than exceed it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab import catalog
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


def power_fit() -> dict[str, float]:
    """The power model's fitted figure (`energy_fit.py`; neutral when absent): `busy_floor_share`, the watts a chip
    draws beyond idle while its kernels run (clock tree, schedulers, register files, caches and crossbars at speed),
    as a share of its TDP."""
    return catalog.power_fit()


@dataclass(frozen=True)
class StepPower:
    """A step's energy per device and the time it takes once the power limit has had its say."""

    joules: np.ndarray
    stage_time: np.ndarray
    clock: np.ndarray          # share of the nominal clock the step ran at (1: the limit did not bind)


def device_energy(table: OpTable, chip: Chip, stage_time: np.ndarray, busy_time: np.ndarray | None = None
                  ) -> StepPower:
    """Joules one device spends on each step (arrays (S,)), and the step's time under the power limit.

    Power = idle (drawn whatever the load) + the busy floor while kernels run + the component energy of the
    step's FLOPs, bytes and link traffic. Where that exceeds the limit (`cap_w`: the TDP or a
    configured cap), the chip lowers its clock: the clocked part of the power falls with the cube of the clock
    (P ~ C V^2 f, V ~ f across the DVFS range), the step takes 1/clock as long, and the average is the limit."""
    e = chip.energy
    if e is None:
        z = np.zeros_like(stage_time)
        return StepPower(z, stage_time, np.ones_like(stage_time))
    fit = power_fit()
    busy = stage_time if busy_time is None else busy_time
    math = (table.flops * table.pj_per_flop).sum(axis=1)
    # every byte from DRAM is written to and read from on-chip SRAM once on its way to the units
    traffic = table.bytes.sum(axis=1) * 8.0 * (e.dram_pj_per_bit + 2.0 * e.sram_pj_per_bit)
    # an all-reduce sends and receives about its payload per chip
    links = table.comm_calls * table.comm_bytes * 2.0 * 8.0 * e.link_pj_per_bit
    clocked = (math + traffic + links) * 1e-12 + fit["busy_floor_share"] * e.cap_w * busy
    idle = e.static_w
    need = idle + clocked / np.maximum(stage_time, 1e-30)
    room = max(e.cap_w - idle, 1e-9)
    clock = np.where(need > e.cap_w, np.cbrt(room / np.maximum(need - idle, 1e-30)), 1.0)
    slowed = stage_time / clock
    joules = np.where(need > e.cap_w, e.cap_w * slowed, idle * stage_time + clocked)
    return StepPower(joules, slowed, clock)


POWER_SCOPES = ("accelerator", "server", "facility")


def energy_scopes(avg_power_w: float, joules_per_output_token: float, host_w: float) -> dict[str, float]:
    """Power and J per output token at the server (accelerators plus the `host_w` of CPUs, DRAM, fans, PSU loss,
    NICs and switches behind them) and the facility (the server at the catalog's PUE) boundaries, beside the
    accelerators' own figures. `_wall` is the server figure under its older name."""
    server = avg_power_w + host_w
    facility = server * float(Draws()("pue"))
    per_w = joules_per_output_token / avg_power_w if avg_power_w > 0 else 0.0   # J per token per watt drawn
    return {"avg_power_w_server": server, "avg_power_w_facility": facility,
            "joules_per_output_token_server": per_w * server, "joules_per_output_token_facility": per_w * facility,
            "joules_per_output_token_wall": per_w * server}


__all__ = ["POWER_SCOPES", "StepPower", "device_energy", "energy_scopes", "host_power_w", "power_fit"]
