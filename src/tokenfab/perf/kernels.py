"""Kernel-level physics shared by the operator model and the microbenchmark answers.

Two effects a roofline misses, both set by how work is spread over a chip's parallel compute units
(NVIDIA SMs, AMD CUs):
- a GEMM runs as output tiles, one per unit at a time, in waves: padded edge tiles and the idle part of
  the last wave waste peak (libraries split K when there are fewer tiles than units);
- a simple streaming kernel keeps only a few loads in flight per thread, so by Little's law its bandwidth
  is capped at (bytes in flight) / (memory latency) however fast the memory is.
"""

from __future__ import annotations

import numpy as np

# Output tile of one CTA: 128 x 128 is the default threadblock tile of CUTLASS/cuBLAS tensor-core GEMMs
# (https://github.com/NVIDIA/cutlass/blob/main/media/docs/efficient_gemm.md); an assumption for other vendors.
GEMM_TILE = 128
# Split-K never gives one CTA a K slice shorter than this (it would spend more time reducing than multiplying).
SPLIT_K_MIN = 256

# Loads and stores per element of the streaming kernels a memcopy query may name (STREAM / gpu-stream names).
STREAM_KERNELS: dict[str, tuple[int, int]] = {
    "read": (1, 0), "init": (0, 1), "copy": (1, 1), "scale": (1, 1), "add": (2, 1), "triad": (2, 1),
}


def gemm_tile_efficiency(m, n, k, units: int | None) -> np.ndarray:
    """Useful share of the tile slots a GEMM of m x n x k occupies on `units` parallel units.

    Work is padded to whole 128 x 128 tiles; tiles (times the split-K factor) run in waves of `units`.
    1.0 where the chip's unit count is unknown (custom designs).
    """
    m, n, k = (np.asarray(x, dtype=float) for x in (m, n, k))
    shape = np.broadcast(m, n, k).shape
    if not units:
        return np.ones(shape)
    m, n = np.maximum(m, 1.0), np.maximum(n, 1.0)
    tiles_m, tiles_n = np.ceil(m / GEMM_TILE), np.ceil(n / GEMM_TILE)
    tiles = tiles_m * tiles_n
    split = np.clip(np.floor(units / tiles), 1.0, np.maximum(np.floor(k / SPLIT_K_MIN), 1.0))
    work = tiles * split
    waves = np.ceil(work / units)
    padding = m * n / (tiles * GEMM_TILE**2)
    return padding * work / (waves * units)


def stream_bandwidth(peak_bw: float, units: int | None, threads: int | None, loads: int, stores: int,
                     element_bytes: float, latency: float) -> float:
    """Bandwidth (B/s) of a one-element-per-thread streaming kernel at full occupancy.

    Each resident thread issues its loads, waits one memory latency, then stores: it moves
    (loads + stores) elements per latency. The in-flight limit and the sustained peak combine as a
    2-norm soft minimum (near the knee both bind: latency grows as the memory queues fill).
    """
    if not units or not threads or loads == 0:
        return peak_bw
    in_flight = units * threads * (loads + stores) * element_bytes / latency
    return float((peak_bw**-2 + in_flight**-2) ** -0.5)
