"""The serving runs shipped under data/measured: gpu-h100-serving (fixed lengths), gpu-h100-serving-varied
(lognormal output lengths) and gpu-h200-serving, a continuous-batching server with every step a CUDA graph:
with the step model fitted on two of a log's runs, the simulator must reproduce the other runs' latencies,
which only its queueing and batching decide, to the issue's targets."""

import json
from pathlib import Path

import numpy as np
import pytest

from tokenfab.calibrate.serving_check import METRICS, check
from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf.params import shipped_calibration

MEASURED = Path(__file__).resolve().parents[2] / "data" / "measured"


@pytest.fixture(scope="module", params=["gpu-h100-serving", "gpu-h100-serving-varied", "gpu-h200-serving"])
def data(request):
    return json.loads((MEASURED / request.param / "serving.json").read_text())


@pytest.fixture(scope="module")
def checked(data):
    chip = load_chip(data["provenance"]["hardware"])
    dep = Deployment(engine=data["provenance"]["engine"])
    _, checks, step_err = check(data, load_model(data["provenance"]["model"]), chip, dep,
                                shipped_calibration().for_chip(chip))
    return [c for c in checks if not c.fitted], step_err


def test_run_came_off_a_gpu_with_graphed_steps(data):
    prov = data["provenance"]
    assert prov["hardware"] in ("h100-sxm", "h200") and prov["device"] == "cuda" and prov["steps"] == "cudagraph"
    assert len(data["runs"]) >= 5 and data["config"]["chunk_unit"] > 1


def test_held_out_runs_meet_the_latency_targets(checked):
    held, _ = checked
    assert len(held) >= 4
    for family, target in (("ttft", 0.20), ("tpot", 0.10)):
        for m in METRICS:
            if m.startswith(family):
                assert np.median([abs(c.error(m)) for c in held]) <= target, m
    # and run by run, up to the heaviest load
    assert all(abs(c.error("tpot_ms_p50")) <= 0.10 for c in held)


def test_steps_with_prompt_work_are_predictable(checked):
    """The eager loop this run replaced left prompt steps host-bound (74% off); graphed, they follow size."""
    _, step_err = checked
    assert step_err["held_out_with_prompt_median_abs"] <= 0.10
    assert step_err["held_out_decode_only_median_abs"] <= 0.05


def test_a_step_time_error_grows_with_load(checked):
    """The unfitted step model is low by a fixed fraction per step; the latency error it causes grows with
    load (the mechanism behind the MLPerf Server misses)."""
    held, step_err = checked
    assert step_err["unfitted_step_median"] < -0.05
    errors = [c.error("tpot_ms_p50", fitted=False) for c in sorted(held, key=lambda c: c.rate)]
    assert errors[-1] < errors[0] < 0


def test_varied_log_replays_each_requests_own_output_length(data):
    if data.get("outputs", "fixed") == "fixed":
        pytest.skip("fixed lengths")
    outputs = np.concatenate([r["output"] for r in data["runs"]])
    assert len(np.unique(outputs)) > 50 and outputs.max() <= data["config"]["output_len"]
    assert 0.85 < outputs.mean() / (data["config"]["output_len"] / 3) < 1.15
