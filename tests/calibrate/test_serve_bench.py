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

CFG = ServeConfig(max_batch=4, token_budget=40, input_len=24, output_len=6, chunk_unit=4)


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
        assert np.all(shapes.prefill_tokens % CFG.chunk_unit == 0)
        assert np.all(shapes.decode_seqs <= CFG.max_batch) and np.all(seconds > 0)


def test_each_request_generates_its_own_output_length():
    dev = open_device("cpu", threads=1)
    model = TorchLlama(dev, load_model("llama-tiny"), max_pos=CFG.input_len + CFG.output_len + 1)
    outputs = np.array([1, 6, 2, 4, 3, 5, 1, 2])
    log = MiniServer(model, CFG).run(np.linspace(0.0, 0.02, 8), outputs=outputs)
    shapes, _ = step_table(log.steps)
    assert shapes.logits.sum() == outputs.sum() and shapes.decode_seqs.sum() == (outputs - 1).sum()
    assert log.output == outputs.tolist()
    lat = log.latencies()      # TPOT over the requests with a second token only
    assert np.isfinite(lat["tpot_ms_p50"]) and lat["tpot_ms_p50"] > 0
    with pytest.raises(ValueError, match="outputs"):
        MiniServer(model, CFG).run(np.zeros(2), outputs=np.array([1, CFG.output_len + 1]))


def test_burst_fills_the_batch_and_chunks_prompts_under_the_budget(served):
    burst, _ = served
    shapes, _ = step_table(burst.steps)
    assert shapes.decode_seqs.max() == CFG.max_batch
    # the first step admits max_batch prompts but the budget takes only part of them
    assert shapes.prefill_tokens[0] == CFG.token_budget and shapes.decode_seqs[0] == 0
    # beside one decoding sequence 39 tokens of the budget are left, and whole chunk units take 36
    assert shapes.prefill_tokens[shapes.decode_seqs == 1].max() == 36


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


@pytest.fixture
def server():
    dev = open_device("cpu", threads=1)
    model = TorchLlama(dev, load_model("llama-tiny"), max_pos=CFG.input_len + CFG.output_len + 1)
    return MiniServer(model, CFG)


def _run(server, decoding, chunks, rows=None, n_chunks=None):
    """One static step on chosen rows; returns the sampled tokens and layer 1's K cache afterwards."""
    host = server._host_inputs(decoding, chunks, len(decoding) if rows is None else rows,
                               len(chunks) if n_chunks is None else n_chunks)
    io = server._device_inputs(host)
    server._step(io)
    return io.out.tolist(), server.caches[1][0].clone()


def test_graph_shapes_cover_every_step_a_run_can_take(server):
    assert server.capture_graphs() == "eager"      # no graphs on a CPU: every step runs eagerly
    shapes = set(server.graph_shapes())
    for b in range(CFG.max_batch + 1):
        for prompt in range(0, CFG.token_budget - b + 1, CFG.chunk_unit):
            if b or prompt:
                assert server.step_shape(b, prompt) in shapes
    assert all(rows % 8 == 0 for rows, prompt in shapes if prompt)


def test_a_prompt_chunk_attends_to_its_own_slot_only(server):
    """Layer 1's keys of a prompt depend on layer 0's attention: they must not change when another
    request's chunk shares the step (a mask that leaked across chunks would change them)."""
    from tokenfab.calibrate.serve_bench import _Seq
    a, b = _Seq(0, 0), _Seq(1, 1)
    _, alone = _run(server, [], [(b, 24)])
    _, shared = _run(server, [], [(a, 12), (b, 24)])
    assert shared[1].float().abs().sum() > 0
    assert (shared[1] - alone[1]).float().abs().max() < 0.05 * alone[1].float().abs().max()
    assert (shared[0] - alone[0]).float().abs().max() > 0.05 * alone[1].float().abs().max()  # a's chunk wrote


def test_padding_rows_and_chunks_change_nothing_real(server):
    """A captured step pads decode rows (to DECODE_PAD) and chunk slots (to max_chunks) with the scratch
    slot: the real sequences' tokens and caches come out as in the exact step."""
    from tokenfab.calibrate.serve_bench import _Seq
    c = _Seq(2, 2)
    first, _ = _run(server, [], [(c, 24)])
    c.done, c.generated, c.token = 24, 1, first[0]
    a = _Seq(0, 0)
    exact, cache_exact = _run(server, [c], [(a, 24)])
    padded, cache_padded = _run(server, [c], [(a, 24)], rows=8, n_chunks=CFG.max_chunks)
    assert [padded[0], padded[8]] == exact
    real = slice(0, CFG.max_batch)
    assert (cache_padded[real] - cache_exact[real]).float().abs().max() < 1e-2 * cache_exact.float().abs().max()


def test_a_log_whose_runs_do_not_pair_up_is_refused(served):
    from tokenfab.calibrate.serving_check import check_log
    burst, _ = served
    run = {"name": "burst", "arrival": burst.arrival, "first": burst.first, "finish": burst.finish,
           "output": burst.output}
    check_log({"runs": [run]})
    with pytest.raises(ValueError, match="one entry per request"):
        check_log({"runs": [{**run, "output": burst.output[:-1]}]})
