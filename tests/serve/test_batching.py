import numpy as np
import pytest

from tokenfab.serve.batching import max_concurrency, schedule_offline, static_batch, steady_state


def test_steady_state_conserves_work():
    s = steady_state(isl=1000, osl=200, concurrency=256, token_budget=8192)
    step = s.step
    # every retired request needs ISL prompt tokens and OSL-1 decode steps
    assert step.prefill_tokens[0] == pytest.approx(s.requests_per_step * 1000)
    assert step.decode_seqs[0] == pytest.approx(s.requests_per_step * 199)
    assert s.concurrency <= 256 + 1e-9
    assert step.tokens[0] <= 8192 + 1e-9


def test_steady_state_budget_bound():
    s = steady_state(isl=4000, osl=10, concurrency=10_000, token_budget=2048)
    assert s.step.tokens[0] == pytest.approx(2048)


def test_max_concurrency_policies():
    assert max_concurrency(100_000, 1000, 1000, 2048, reserve_full=True) == 50
    assert max_concurrency(100_000, 1000, 1000, 2048, reserve_full=False) == 66
    assert max_concurrency(10**9, 10, 10, 256, reserve_full=True) == 256


def test_schedule_offline_finishes_every_request_in_order():
    sched = schedule_offline(n_requests=50, isl=300, osl=20, concurrency=16, token_budget=1024)
    steps = sched.steps
    assert steps.prefill_tokens.sum() == pytest.approx(50 * 300)
    assert steps.decode_seqs.sum() == pytest.approx(50 * 19)
    assert np.all(sched.last_token_step - sched.first_token_step == 19)
    assert np.all(np.diff(sched.first_token_step) >= 0)  # FCFS
    assert np.all(steps.decode_seqs + (steps.prefill_tokens > 0) <= 16 + 1)


def test_static_batch_weights_cover_every_decode_step():
    steps, weights = static_batch(batch=8, isl=128, osl=2048)
    assert weights[0] == 1 and weights[1:].sum() == pytest.approx(2047)
    assert steps.prefill_tokens[0] == 8 * 128
    assert np.all(np.diff(steps.decode_ctx[1:]) > 0)
