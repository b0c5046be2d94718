"""The latency band: the step model's held-out error, carried through the simulator."""

import json

import pytest

from tokenfab import catalog
from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf.band import band_params, band_scales, metric_band
from tokenfab.perf.params import SCALAR_PARAMS, shipped_calibration
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.step import step_cost
from tokenfab.serve.cluster import Pools
from tokenfab.serve.simulate import ClassInfo, simulate
from tokenfab.workload import RequestTable

MODEL, CHIP = load_model("llama-3.1-8b"), load_chip("h100-sxm")
PARAMS = shipped_calibration().for_chip(CHIP)


def test_time_scale_multiplies_every_step_and_is_never_fitted():
    shapes = StepShapes.build(decode_seqs=[1.0, 64.0, 8.0], decode_ctx=[512.0, 64 * 900.0, 8 * 300.0],
                              prefill_tokens=[0.0, 0.0, 1024.0], prefill_pairs=[0.0, 0.0, 1024 * 512.0])
    for engine in ("trtllm", "vllm"):
        dep = Deployment(engine=engine, tp=2)
        base = step_cost(MODEL, CHIP, dep, shapes, PARAMS).time
        scaled = step_cost(MODEL, CHIP, dep, shapes, PARAMS.with_(time_scale=1.2)).time
        assert scaled == pytest.approx(1.2 * base, rel=1e-12)
    assert "time_scale" not in SCALAR_PARAMS
    assert "time_scale" not in json.loads(json.dumps(shipped_calibration().to_json()))["global"]


def test_the_shipped_band_comes_from_a_held_out_error():
    err = catalog.step_error()
    assert err["rows"] >= 100 and err["p10"] < err["p50"] < err["p90"] and err["p10"] < 0 < err["p90"]
    fast, slow = band_scales()
    assert fast < 1.0 < slow
    lo, hi = band_params(PARAMS)
    assert lo.time_scale == pytest.approx(fast) and hi.time_scale == pytest.approx(slow)


def test_band_brackets_the_simulated_latency():
    dep = Deployment(engine="vllm")
    table = RequestTable.single_turn([i / 8.0 for i in range(400)], [512] * 400, [128] * 400)

    def run(params):
        return simulate(MODEL, CHIP, dep, [table], [ClassInfo("all")], Pools(), params).metrics
    nominal = run(PARAMS)
    band = metric_band(run, PARAMS, ("ttft_ms_p50", "tpot_ms_p50", "tpot_ms_p99"))
    for name, (low, high) in band.items():
        assert low < nominal[name] < high, name
    # a uniform step error moves TPOT at least in proportion at this load
    fast, slow = band_scales()
    low, high = band["tpot_ms_p50"]
    assert high / nominal["tpot_ms_p50"] >= slow * 0.99 and low / nominal["tpot_ms_p50"] <= fast * 1.01
