"""The simulator's scalar step timer must equal the vectorised step-cost model it is built from."""

import numpy as np
import pytest

from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf.params import shipped_calibration
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.step import step_cost
from tokenfab.perf.steptimer import StepTimer

CASES = [("llama-2-7b", "h100-sxm", 1, "bf16", "vllm"), ("gpt-oss-120b", "h100-sxm", 2, "bf16", "trtllm"),
         ("mixtral-8x7b", "mi300x", 2, "fp8", "trtllm"), ("deepseek-r1", "h200", 8, "fp8", "trtllm")]


@pytest.mark.parametrize(("model_id", "hw", "tp", "prec", "engine"), CASES)
def test_timer_equals_step_cost(model_id: str, hw: str, tp: int, prec: str, engine: str) -> None:
    model, chip = load_model(model_id), load_chip(hw)
    dep = Deployment(tp=tp, weight_precision=prec, act_precision=prec, engine=engine)
    params = shipped_calibration().for_chip(chip)
    timer = StepTimer(model, chip, dep, params, 4096)
    rng = np.random.default_rng(1)
    b = rng.integers(0, 400, 100)
    ctx = b * rng.integers(1, 6000, 100)
    p = rng.integers(0, 6000, 100) * (rng.random(100) < 0.5)   # beyond the tabulated size: the table grows
    prior = rng.integers(0, 3000, 100)
    pairs = p * prior + p * (p + 1) / 2
    logits = b + (p > 0)
    ref = step_cost(model, chip, dep, StepShapes.build(b, ctx, p, pairs, logits), params).time
    got = [timer.step(int(x), float(c), int(q), float(r), int(lg))
           for x, c, q, r, lg in zip(b, ctx, p, pairs, logits, strict=True)]
    np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_decode_run_matches_single_steps() -> None:
    model, chip = load_model("gpt-oss-120b"), load_chip("h100-sxm")   # sliding-window layers too
    dep = Deployment(tp=2)
    timer = StepTimer(model, chip, dep, shipped_calibration().for_chip(chip), 512)
    run = timer.decode_run(48, 48 * 300.0, 50)
    single = [timer.step(48, 48 * (300.0 + j)) for j in range(50)]
    np.testing.assert_allclose(run, single, rtol=1e-12)
    assert np.all(np.diff(run) >= 0)   # more context never makes a step faster
