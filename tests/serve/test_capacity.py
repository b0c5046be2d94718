"""SLO capacity: the bisection brackets the SLO, is deterministic, caches, and ranks SLOs and layouts sensibly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.serve import capacity as C
from tokenfab.serve.capacity import best_deployment, deployment_candidates, slo_capacity
from tokenfab.serve.simulate import ClassInfo, simulate
from tokenfab.workload import SLO, LengthDist, Poisson, RequestClass, Workload, preset

MODEL, CHIP = load_model("llama-3.1-8b"), load_chip("h100-sxm")
DEP = Deployment(tp=1, weight_precision="fp8", act_precision="fp8", kv_precision="fp8")
CLS = RequestClass("chat", 1.0, LengthDist.lognormal(600, 500, min=16, max=4000), LengthDist.lognormal(150, 100, min=4,
                   max=800), SLO(0.5, 0.03, 90.0))
N = 400


def _attained(rate: float, rc: RequestClass = CLS) -> bool:
    table = C._sample(rc, N, 0, 1.0)
    info = ClassInfo(rc.name, rc.slo.ttft_s, rc.slo.tpot_s, rc.slo.percentile)
    res = simulate(MODEL, CHIP, DEP, [C._at_rate(table, rate)], [info])
    return res.metrics["classes"][rc.name]["slo_attained"]


def test_capacity_meets_slo_and_a_little_more_load_does_not() -> None:
    C.clear_memo()
    cap = slo_capacity(MODEL, CHIP, DEP, CLS, requests=N)
    assert cap.feasible and cap.rate_per_replica > 0
    assert cap.ttft_p <= 0.5 and cap.tpot_p <= 0.03
    assert _attained(cap.rate_per_replica)
    assert not _attained(cap.rate_per_replica * 1.03 ** 2)   # the bisection stops within rel_tol of the edge
    sample = C._sample(CLS, N, 0, 1.0)
    per_request = sample.output_len.mean()
    assert cap.output_tokens_per_s_per_chip == pytest.approx(cap.rate_per_replica * per_request)


def test_same_inputs_same_answer_and_disk_cache(tmp_path) -> None:
    C.clear_memo()
    a = slo_capacity(MODEL, CHIP, DEP, CLS, requests=N, cache_dir=tmp_path)
    C.clear_memo()
    b = slo_capacity(MODEL, CHIP, DEP, CLS, requests=N, cache_dir=tmp_path)
    assert a.probes > 0 and b == a and len(list(tmp_path.glob("*.json"))) == 1
    c = slo_capacity(MODEL, CHIP, DEP, CLS, requests=N, seed=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2 and c.rate_per_replica != a.rate_per_replica


def test_tighter_slo_lowers_capacity_and_impossible_slo_gives_zero() -> None:
    loose = slo_capacity(MODEL, CHIP, DEP, CLS, requests=N)
    tight = slo_capacity(MODEL, CHIP, DEP, replace(CLS, slo=SLO(0.5, 0.012, 90.0)), requests=N)
    assert tight.rate_per_replica < loose.rate_per_replica
    none = slo_capacity(MODEL, CHIP, DEP, replace(CLS, slo=SLO(1e-4, None, 90.0)), requests=N)
    assert not none.feasible and none.output_tokens_per_s_per_chip == 0.0 and "SLO" in none.reason


def test_best_deployment_is_the_best_candidate_per_chip() -> None:
    cands = [d for d in deployment_candidates(MODEL, CHIP) if d.weight_precision == "fp8" and d.tp <= 2]
    dep, cap = best_deployment(MODEL, CHIP, CLS, candidates=cands, requests=N)
    each = [slo_capacity(MODEL, CHIP, d, CLS, requests=N).output_tokens_per_s_per_chip for d in cands]
    assert cap.output_tokens_per_s_per_chip == pytest.approx(max(each))
    assert dep in cands


def test_a_class_without_slo_is_refused() -> None:
    with pytest.raises(ValueError, match="no SLO"):
        slo_capacity(MODEL, CHIP, DEP, replace(CLS, slo=None))


def test_multi_turn_prefix_reuse_under_memory_pressure_runs() -> None:
    """A request's cached prefix must not be evicted by its own admission (used to raise KeyError)."""
    agent = preset("agentic").classes[0]
    table = Workload((agent,), Poisson(1.0)).requests(750, 0)
    res = simulate(load_model("llama-3.1-70b"), CHIP, DEP, [table], [ClassInfo("agent", 2.0, 0.05, 90)])
    assert res.metrics["requests"] + res.metrics["rejected"] == 750
    assert np.isfinite(res.metrics["ttft_ms_p50"])
