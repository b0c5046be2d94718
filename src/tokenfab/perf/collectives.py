"""Alpha-beta cost of collectives on a fabric (NVSwitch/NVLS, NVLink bridge, Infinity Fabric, ICI, PCIe, RoCE/IB)."""

from __future__ import annotations

import numpy as np

from tokenfab.perf.params import EffParams


def allreduce_time(nbytes, ranks: int, fabric: str, link_bw: float, params: EffParams,
                   in_switch: bool = False) -> np.ndarray:
    """All-reduce time: alpha + factor * bytes / (per-chip bandwidth * efficiency).

    A ring moves 2(n-1)/n of the message through each chip's link; with in-switch reduction
    (NVLink SHARP on NVSwitch 3+, n > 2) each chip sends its data once and receives the sum once.
    """
    nbytes = np.asarray(nbytes, dtype=float)
    if ranks <= 1:
        return np.zeros_like(nbytes)
    bus_factor = 1.0 if in_switch and ranks > 2 else 2.0 * (ranks - 1) / ranks
    beta = bus_factor / (link_bw * params.comm_eff[fabric])
    # latency grows with the number of ring steps beyond two ranks
    alpha = params.comm_alpha[fabric] * (1.0 + np.log2(ranks) / 3.0)
    return alpha + nbytes * beta


def busbw(nbytes, ranks: int, seconds) -> np.ndarray:
    """NCCL bus bandwidth (B/s) of an all-reduce of `nbytes` that took `seconds`."""
    return np.asarray(nbytes) / np.asarray(seconds) * 2.0 * (ranks - 1) / ranks
