"""Kernel-level physics: GEMM wave quantisation and the bytes-in-flight cap of streaming kernels."""

import numpy as np
import pytest

from tokenfab.hardware import load_chip
from tokenfab.perf.kernels import GEMM_TILE, gemm_tile_efficiency, stream_bandwidth
from tokenfab.perf.params import UNCALIBRATED, shipped_calibration
from tokenfab.predict import plan_query
from tokenfab.queries import parse_query


def test_one_tile_past_a_full_wave_is_slower_per_flop():
    units = 132
    full = gemm_tile_efficiency(GEMM_TILE, GEMM_TILE * units, 8192, units)
    spill = gemm_tile_efficiency(GEMM_TILE, GEMM_TILE * (units + 1), 8192, units)
    assert full == pytest.approx(1.0)
    assert spill < 0.6 * full   # the extra tile costs a whole second wave


def test_more_units_never_slower_for_the_same_gemm():
    m = np.array([64, 128, 1000, 4096, 8192])
    n, k = 12288, 12288
    times = [2 * m * n * k / (u * gemm_tile_efficiency(m, n, k, u)) for u in (64, 108, 132, 304)]
    for slower, faster in zip(times, times[1:], strict=False):
        assert np.all(faster <= slower * (1 + 1e-12))


def test_padding_and_unknown_units():
    assert gemm_tile_efficiency(64, 128 * 132, 4096, 132) == pytest.approx(0.5)  # half of each tile's rows idle
    assert gemm_tile_efficiency(100, 100, 100, None) == 1.0


def test_split_k_fills_the_chip_when_tiles_are_few():
    one_tile = gemm_tile_efficiency(128, 128, 128 * 1024, 132)
    assert one_tile > 0.9


def test_stream_bandwidth_grows_with_bytes_in_flight_and_never_exceeds_peak():
    peak = 4.8e12
    scale = stream_bandwidth(peak, 132, 2048, 1, 1, 8, 8e-7)
    triad = stream_bandwidth(peak, 132, 2048, 2, 1, 8, 8e-7)
    more_units = stream_bandwidth(peak, 264, 2048, 1, 1, 8, 8e-7)
    assert scale < triad < peak
    assert scale < more_units < peak
    assert stream_bandwidth(peak, None, None, 1, 1, 8, 8e-7) == peak


def _predict(row: dict, cal=None):
    plan = plan_query(parse_query(row))
    cal = cal or shipped_calibration()
    return plan.evaluate(cal.for_chip(plan.chip))


def test_memcopy_triad_beats_scale_on_h200_and_unknown_kernel_is_refused():
    base = {"id": "x", "hardware": "h200", "devices": 1, "scenario": "memcopy", "metric": "memcopy_tbps"}
    scale = _predict({**base, "shape": {"kernel": "scale", "element_bytes": 8}})["memcopy_tbps"]
    triad = _predict({**base, "shape": {"kernel": "triad", "element_bytes": 8}})["memcopy_tbps"]
    assert scale < triad < 4.8
    from tokenfab.predict import QueryError
    with pytest.raises(QueryError, match="shape.kernel"):
        plan_query(parse_query({**base, "shape": {"kernel": "bogus", "element_bytes": 8}}))


def test_gemm_prediction_shows_the_wave_tail():
    chip = load_chip("h100-sxm")
    base = {"id": "g", "hardware": "h100-sxm", "devices": 1, "scenario": "gemm", "metric": "gemm_tflops",
            "precision": "bf16"}
    n_full = GEMM_TILE * chip.compute_units
    aligned = _predict({**base, "shape": {"m": 8 * GEMM_TILE, "n": n_full, "k": 8192}}, UNCALIBRATED)
    spilled = _predict({**base, "shape": {"m": 8 * GEMM_TILE, "n": n_full + GEMM_TILE, "k": 8192}}, UNCALIBRATED)
    assert spilled["gemm_tflops"] < aligned["gemm_tflops"]


def test_allreduce_time_monotonic_in_bytes():
    base = {"id": "a", "hardware": "h100-sxm", "devices": 8, "scenario": "allreduce",
            "metric": "allreduce_latency_ms"}
    sizes = [2**s for s in range(10, 34, 2)]
    times = [_predict({**base, "shape": {"bytes": b}})["allreduce_latency_ms"] for b in sizes]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))


def test_chip_of_measured_vendor_but_unmeasured_family_gets_vendor_parameters():
    cal = shipped_calibration()
    b200 = load_chip("b200")
    assert b200.family not in cal.family
    assert cal.for_chip(b200).gemm_eff == pytest.approx(cal.vendor["nvidia"]["gemm_eff"])
