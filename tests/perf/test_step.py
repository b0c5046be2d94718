"""Step-cost physics: monotonicity properties and hand-checked byte counts."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf import StepShapes, step_cost
from tokenfab.perf.ops import build_ops
from tokenfab.perf.params import shipped_calibration

MODEL = load_model("llama-3.1-70b")
CHIP = load_chip("h100-sxm")
DEP = Deployment(tp=4, weight_precision="fp8", act_precision="fp8", kv_precision="fp8")
PARAMS = shipped_calibration().for_chip(CHIP)


def _time(chip, batch, ctx, prefill=0.0, dep=DEP):
    steps = StepShapes.build(decode_seqs=batch, decode_ctx=np.asarray(batch) * ctx, prefill_tokens=prefill,
                             prefill_pairs=np.asarray(prefill) ** 2 / 2)
    return step_cost(MODEL, chip, dep, steps, PARAMS).time


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 2048), ctx=st.integers(1, 32768), prefill=st.integers(0, 8192),
       factor=st.floats(1.01, 4.0))
def test_more_bandwidth_or_flops_never_slower(batch, ctx, prefill, factor):
    base = _time(CHIP, batch, ctx, prefill)
    faster_mem = replace(CHIP, mem_bw=CHIP.mem_bw * factor)
    faster_math = replace(CHIP, peak_flops={k: v * factor for k, v in CHIP.peak_flops.items()})
    faster_link = replace(CHIP, scaleup_bw=CHIP.scaleup_bw * factor)
    for chip in (faster_mem, faster_math, faster_link):
        assert _time(chip, batch, ctx, prefill)[0] <= base[0] * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 1024), ctx=st.integers(1, 16384), extra=st.integers(1, 512))
def test_time_grows_with_batch_and_context(batch, ctx, extra):
    t = _time(CHIP, batch, ctx)[0]
    assert _time(CHIP, batch + extra, ctx)[0] > t
    assert _time(CHIP, batch, ctx + extra)[0] > t


def test_vectorised_equals_one_by_one():
    batches = np.array([1, 7, 64, 300])
    ctxs = np.array([10, 2000, 512, 8000])
    together = _time(CHIP, batches, ctxs)
    alone = np.array([_time(CHIP, b, c)[0] for b, c in zip(batches, ctxs, strict=True)])
    np.testing.assert_allclose(together, alone, rtol=1e-12)


def test_decode_bytes_by_hand():
    m = load_model("llama-2-7b")
    dep = Deployment(weight_precision="bf16", act_precision="bf16", kv_precision="bf16")
    table = build_ops(m, load_chip("a100-sxm"), dep, StepShapes.decode(8, 1000))
    col = {n: i for i, n in enumerate(table.names)}
    kv = 8 * 1000 * 32 * (2 * 32 * 128 * 2)
    assert table.bytes[0, col["attn_decode"]] == kv
    weights = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) * 2
    gemm_bytes = table.bytes[0, col["attn_proj"]] + table.bytes[0, col["mlp"]]
    assert weights < gemm_bytes < weights * 1.01  # weights dominate; 8 rows of activations are tiny
    assert table.flops[0, col["attn_proj"]] + table.flops[0, col["mlp"]] == 2 * 8 * weights / 2


def test_moe_expert_hits_reduce_weight_reads_at_small_batch():
    m = load_model("mixtral-8x7b")
    dep = Deployment(weight_precision="bf16", act_precision="bf16", kv_precision="bf16")
    table = build_ops(m, CHIP, dep, StepShapes.decode(np.array([1, 1024]), 100))
    col = table.names.index("experts")
    one, many = table.bytes[:, col]
    all_experts = m.experts * m.expert_params * 2 * m.layers
    assert one < 0.3 * all_experts          # batch 1 touches top-2 of 8 experts per layer
    assert many > 0.99 * all_experts        # a big batch touches all of them


def test_energy_is_bounded_by_tdp():
    cost = step_cost(MODEL, CHIP, DEP, StepShapes.decode(np.array([1, 256]), 4000), PARAMS)
    power = cost.energy / cost.time
    assert np.all(power <= CHIP.tdp_w * DEP.devices * (1 + 1e-9))
    assert np.all(power > 0)


def test_legacy_layer_cost_applies_to_2023_engines_only():
    """legacy_layer_ratio scales the per-layer fixed cost of TensorRT-LLM 0.5/0.6 and nothing else."""
    steps = StepShapes.decode(np.array([1.0]), np.array([512.0]))
    p = PARAMS.with_(legacy_layer_ratio=1.0)
    doubled = p.with_(legacy_layer_ratio=2.0)
    for engine in ("trtllm-0.6.1", "trtllm-0.17", "vllm-0.10"):
        dep = replace(DEP, engine=engine)
        extra = (step_cost(MODEL, CHIP, dep, steps, doubled).overhead[0]
                 - step_cost(MODEL, CHIP, dep, steps, p).overhead[0])
        if engine == "trtllm-0.6.1":   # one more t_layer per layer, under the legacy engines' time multiplier
            assert extra == pytest.approx(p.t_layer * MODEL.layers * p.legacy_scale, rel=1e-9)
        else:
            assert extra == 0.0
