"""Large-MoE step physics: expert parallelism, the all-to-all on the real fabric, MTP drafts."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab.deployment import Deployment, DeploymentError, kv_capacity_tokens, weight_bytes_per_device
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf import StepShapes, step_cost
from tokenfab.perf.ops import a2a_bytes, build_ops, ep_imbalance
from tokenfab.perf.params import shipped_calibration
from tokenfab.perf.steptimer import StepTimer

DS = load_model("deepseek-r1")
H200 = load_chip("h200")
PARAMS = shipped_calibration().for_chip(H200)
FP8 = dict(weight_precision="fp8", act_precision="fp8", kv_precision="fp8", engine="sglang-0.5.2")


def _decode(dep, chip=H200, batch=1024.0, ctx=2048.0, model=DS):
    return float(step_cost(model, chip, dep, StepShapes.decode(batch, ctx), PARAMS).time[0])


def test_ep_changes_the_answer_and_the_layout():
    tp8 = Deployment(tp=8, **FP8)
    dep8 = Deployment(tp=1, ep=8, **FP8)
    assert tp8.devices == dep8.devices == 8 and dep8.attn_dp == 8 and dep8.all_to_all and not tp8.all_to_all
    assert _decode(tp8) != pytest.approx(_decode(dep8), rel=1e-3)
    # attention replicated on every DP rank: more weight per chip than TP8, all of the MLA latent per rank
    assert weight_bytes_per_device(DS, dep8) > weight_bytes_per_device(DS, tp8)
    # each DP rank keeps its own sequences' KV: 8 pools, not one latent replicated 8 times
    assert kv_capacity_tokens(DS, H200, dep8) > 4 * kv_capacity_tokens(DS, H200, tp8)


def test_ep_inside_tp_keeps_the_weight_traffic_and_adds_imbalance():
    base = Deployment(tp=8, ep=1, **FP8)
    ep4 = Deployment(tp=8, ep=4, **FP8)
    assert weight_bytes_per_device(DS, ep4) == pytest.approx(weight_bytes_per_device(DS, base))
    a, b = (build_ops(DS, H200, d, StepShapes.decode(64, 1000)) for d in (base, ep4))
    experts = a.names.index("experts")
    assert b.bytes[0, experts] == pytest.approx(a.bytes[0, experts], rel=0.05)
    assert b.flops[0, experts] > a.flops[0, experts]   # the busiest of 4 expert groups sets the pace


def test_wide_ep_weights_shrink_with_ep_and_redundant_experts_cost_memory():
    w = [weight_bytes_per_device(DS, Deployment(tp=1, ep=ep, **FP8)) for ep in (8, 16, 32, 64)]
    assert all(x > y for x, y in zip(w, w[1:], strict=False))
    eplb = Deployment(tp=1, ep=72, redundant_experts=32, **FP8)
    eplb.check(DS, load_chip("h100-sxm"))
    assert weight_bytes_per_device(DS, eplb) > weight_bytes_per_device(DS, eplb.with_(redundant_experts=0))


def test_imbalance_is_one_without_ep_and_fades_with_load():
    assert ep_imbalance(np.array([10.0]), 1)[0] == 1.0
    m = np.array([1.0, 10.0, 100.0, 10000.0])
    f = ep_imbalance(m, 32)
    assert np.all(np.diff(f) < 0) and f[-1] < 1.05 and f[0] > 2.0


def test_a2a_leaves_the_domain_only_when_ep_exceeds_it():
    dep = Deployment(tp=1, ep=8, **FP8)
    intra, inter = a2a_bytes(DS, H200, dep, np.array([1024.0]), 1.0)
    assert intra[0] > 0 and inter[0] == 0
    intra32, inter32 = a2a_bytes(DS, H200, dep.with_(ep=32), np.array([1024.0]), 1.0)
    assert inter32[0] > 0


@settings(max_examples=30, deadline=None)
@given(ep=st.sampled_from([16, 32, 64]), bw_scale=st.floats(1.0, 8.0), domain=st.sampled_from([8, 16, 32, 72]),
       batch=st.integers(16, 4096))
def test_more_scaleup_bandwidth_or_a_larger_domain_never_slows_ep(ep, bw_scale, domain, batch):
    chip = load_chip("h100-sxm")
    dep = Deployment(tp=1, ep=ep, **FP8)
    base = _decode(dep, chip, batch=float(batch))
    faster = replace(chip, scaleup_bw=chip.scaleup_bw * bw_scale)
    assert _decode(dep, faster, batch=float(batch)) <= base * (1 + 1e-9)
    wider = replace(chip, scaleup_domain=max(domain, chip.scaleup_domain))
    assert _decode(dep, wider, batch=float(batch)) <= base * (1 + 1e-9)


def test_overlap_hides_the_all_to_all():
    dep = Deployment(tp=1, ep=32, **FP8)
    plain, hidden = (step_cost(DS, H200, d, StepShapes.decode(4096.0, 2000.0), PARAMS) for d in
                     (dep, dep.with_(overlap=True)))
    assert hidden.communication[0] < plain.communication[0]
    assert hidden.time[0] < plain.time[0]


def test_mtp_drafts_cost_time_and_emit_more_tokens():
    dep = Deployment(tp=1, ep=8, **FP8)
    spec = dep.with_(mtp=2, accept=2.5)
    t0, t2 = _decode(dep, batch=64.0), _decode(spec, batch=64.0)
    assert t2 > t0                        # three tokens per sequence through the model, plus two drafts
    assert 64 * 2.5 / t2 > 64 / t0        # but more tokens per second at a published acceptance
    timer = StepTimer(DS, H200, spec, PARAMS, 4096)
    assert timer.step(64, 64 * 2048.0) == pytest.approx(t2, rel=1e-9)


@pytest.mark.parametrize("changes, field", [
    (dict(ep=3), "ep"), (dict(mtp=2, accept=1.5), None), (dict(mtp=1, accept=2.5), "accept"),
    (dict(mtp=-1), "mtp"),
])
def test_bad_layouts_name_their_field(changes, field):
    dep = Deployment(tp=1, **{**FP8, **changes})
    if field is None:
        dep.check(DS, H200)
        return
    with pytest.raises(DeploymentError, match=field):
        dep.check(DS, H200)


def test_mtp_on_a_model_without_an_mtp_module_is_refused():
    with pytest.raises(DeploymentError, match="mtp"):
        Deployment(tp=8, mtp=1, accept=1.5, **FP8).check(load_model("llama-3.1-70b"), H200)


def test_sglang_turns_its_overlap_scheduler_off_for_speculation_and_the_host_work_shows():
    from tokenfab.deployment import host_overlap_default
    assert not host_overlap_default("sglang-0.5.2", 2) and host_overlap_default("sglang-0.5.2", 0)
    assert host_overlap_default("trtllm", 3)
    dep = Deployment(tp=1, ep=8, **FP8)
    exposed = dep.with_(host_overlap=False)
    gap = _decode(exposed, batch=8.0) - _decode(dep, batch=8.0)
    assert gap == pytest.approx(PARAMS.t_host_step * PARAMS.sglang_fixed_ratio * PARAMS.time_scale, rel=1e-6)
    assert gap > 0


def test_fp8_attention_speeds_compute_bound_mla_decode_only_where_the_chip_has_fp8():
    h20 = load_chip("h20")
    dep = Deployment(tp=1, ep=16, **FP8)
    fast = dep.with_(fp8_attention=True)
    params = shipped_calibration().for_chip(h20)

    def attn(d, chip):
        cost = step_cost(DS, chip, d, StepShapes.decode(48 * 16, 5000.0), params)
        return float(cost.time[0])
    # MLA's absorbed decode attention is compute-bound on H20 (148 dense BF16 TFLOP/s for 4 TB/s)
    assert attn(fast, h20) < 0.85 * attn(dep, h20)


def test_engine_fixed_costs_scale_apart_from_its_kernels():
    """SGLang's fixed-cost ratio moves a batch-1 step much more than a compute-bound one."""
    dep = Deployment(tp=8, **FP8)
    lean = PARAMS.with_(sglang_fixed_ratio=PARAMS.sglang_fixed_ratio / 2)

    def t(params, batch, ctx=1000.0):
        return float(step_cost(DS, H200, dep, StepShapes.decode(batch, ctx), params).time[0])
    small = 1 - t(lean, 1) / t(PARAMS, 1)
    big = 1 - t(lean, 2048) / t(PARAMS, 2048)
    assert small > 0 and big >= 0 and small > 3 * big


def test_sglang_all_reduce_latency_is_its_measured_one_shot_kernel():
    """With every multiplier at 1, SGLang's TP8 batch-1 step differs from TensorRT-LLM's by exactly the
    all-reduce latency: the dense fit's per call, against 6.5 us for SGLang's one-shot kernel."""
    from tokenfab.perf.timing import SGLANG_ONE_SHOT_AR_S, comm_latency
    gpt = load_model("gpt-oss-120b")
    h100 = load_chip("h100-sxm")
    params = shipped_calibration().for_chip(h100).with_(sglang_scale=1.0, sglang_fixed_ratio=1.0)
    shapes = StepShapes.decode(1, 1000.0)
    sgl, trt = (Deployment(tp=8, weight_precision="fp4", act_precision="bf16", kv_precision="bf16", engine=e)
                for e in ("sglang-0.5.1", "trtllm"))
    table = build_ops(gpt, h100, trt, shapes)
    gap = float(step_cost(gpt, h100, trt, shapes, params).time[0] - step_cost(gpt, h100, sgl, shapes, params).time[0])
    expected = comm_latency(table, h100, params) - table.comm_calls * SGLANG_ONE_SHOT_AR_S[1]
    assert gap == pytest.approx(expected, rel=1e-6) and gap > 0
