"""The continuous-batching server of the serving check, on a CPU with the 2-layer toy model: it schedules
like the simulator's engine (token accounting per step), and its log replays through the simulator."""

import numpy as np
import pytest

pytest.importorskip("torch")

from tokenfab.calibrate.model_bench import TorchLlama  # noqa: E402
from tokenfab.calibrate.serve_bench import MiniServer, ServeConfig  # noqa: E402
from tokenfab.calibrate.serving_check import check, engine_limits, step_table  # noqa: E402
from tokenfab.calibrate.torchenv import open_device  # noqa: E402
from tokenfab.deployment import Deployment  # noqa: E402
from tokenfab.hardware import load_chip  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402

CFG = ServeConfig(max_batch=4, token_budget=40, input_len=24, output_len=6)


@pytest.fixture(scope="module")
def served():
    dev = open_device("cpu", threads=1)
    model = TorchLlama(dev, load_model("llama-tiny"), max_pos=CFG.input_len + CFG.output_len + 1)
    server = MiniServer(model, CFG)
    burst = server.run(np.zeros(10))
    poisson = server.run(np.cumsum(np.random.default_rng(1).exponential(0.01, 12)))
    return burst, poisson


def test_every_request_finishes_after_its_first_token(served):
    for log in served:
        arrival, first, finish = (np.asarray(a) for a in (log.arrival, log.first, log.finish))
        assert np.all(first > arrival) and np.all(finish > first)


def test_steps_carry_every_prompt_and_output_token_once(served):
    for log in served:
        n = len(log.arrival)
        shapes, seconds = step_table(log.steps)
        assert shapes.prefill_tokens.sum() == n * CFG.input_len
        assert shapes.decode_seqs.sum() == n * (CFG.output_len - 1)     # the first token comes with the prompt
        assert shapes.logits.sum() == n * CFG.output_len
        assert np.all(shapes.decode_seqs + shapes.prefill_tokens <= CFG.token_budget)
        assert np.all(shapes.decode_seqs <= CFG.max_batch) and np.all(seconds > 0)


def test_burst_fills_the_batch_and_chunks_prompts_under_the_budget(served):
    burst, _ = served
    shapes, _ = step_table(burst.steps)
    assert shapes.decode_seqs.max() == CFG.max_batch
    # the first step admits max_batch prompts but the budget takes only part of them
    assert shapes.prefill_tokens[0] == CFG.token_budget and shapes.decode_seqs[0] == 0


def test_the_log_replays_through_the_simulator(served):
    burst, poisson = served
    data = {"config": CFG.__dict__, "runs": [
        {"name": "saturation", "rate": float("inf"), "steps": burst.steps, "arrival": burst.arrival,
         "latencies": burst.latencies()},
        {"name": "poisson", "rate": 100.0, "steps": poisson.steps, "arrival": poisson.arrival,
         "latencies": poisson.latencies()}]}
    chip = load_chip("h100-sxm")   # any chip: the fit moves its efficiencies onto this CPU's step times
    model = load_model("llama-tiny")
    dep = Deployment(engine="pytorch-cpu")
    assert engine_limits(data["config"]).reserve_full
    params, checks, _ = check(data, model, chip, dep, shipped_calibration().for_chip(chip),
                              fit_runs=("saturation", "poisson"))
    assert [c.name for c in checks] == ["poisson"] and checks[0].fitted
    assert all(v > 0 for v in checks[0].simulated.values())


def test_static_decode_step_samples_a_token_per_sequence():
    """The step a GPU captures as a CUDA graph (whole slots, masked by position) runs on a CPU too."""
    dev = open_device("cpu", threads=1)
    torch = dev.torch
    model = TorchLlama(dev, load_model("llama-tiny"), max_pos=CFG.input_len + CFG.output_len + 1)
    server = MiniServer(model, CFG)
    assert server.capture_decode() == "eager"     # no graphs on a CPU: every step runs eagerly
    ids = torch.tensor([5, 7, 9])
    pos = torch.tensor([CFG.input_len, CFG.input_len + 2, CFG.input_len + 4])
    out = torch.zeros(3, dtype=torch.long)
    server._decode_static(ids, pos, torch.tensor([0, 2, 3]), out)
    assert out.shape == (3,) and bool(((out >= 1) & (out < model.spec.vocab)).all())
