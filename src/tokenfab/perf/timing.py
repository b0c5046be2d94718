"""Turn an operator table into time, energy and a breakdown, given a chip and efficiency parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.deployment import engine_family
from tokenfab.hardware import DEFAULT_NIC_BW, Chip, System
from tokenfab.perf.collectives import allreduce_time
from tokenfab.perf.energy import device_energy
from tokenfab.perf.ops import ATTN_DECODE, ATTN_PREFILL, ELEMENTWISE, GEMM, OpTable
from tokenfab.perf.params import EffParams


@dataclass(frozen=True)
class StepCost:
    """Per-step results, arrays of shape (S,). `time` is one step's latency through the replica."""

    time: np.ndarray
    compute: np.ndarray
    memory: np.ndarray
    communication: np.ndarray
    overhead: np.ndarray
    energy: np.ndarray       # joules per step, summed over the replica's chips (component model, TDP-capped)
    stage_time: np.ndarray   # one pipeline stage's time (throughput limit under pipelining)


# SGLang's one-shot custom all-reduce latency on H100 NVLink (s): 2-4 GPUs, 8 GPUs (the mid-points of the
# 512 B-32 KB rows of github.com/sgl-project/sglang/pull/2904)
SGLANG_ONE_SHOT_AR_S = (4.2e-6, 6.5e-6)


def soft_roofline(tc: np.ndarray, tm: np.ndarray, q: float) -> np.ndarray:
    """Smooth max of compute and memory time: near the ridge both limit (q -> inf gives max)."""
    big = np.maximum(tc, tm)
    safe = np.where(big > 0, big, 1.0)
    return big * ((tc / safe) ** q + (tm / safe) ** q) ** (1.0 / q)


def engine_scale(engine: str, params: EffParams) -> float:
    """The multiplier on a step's time: the engine family's, times the band's `time_scale` (1 in predictions)."""
    family = engine_family(engine)
    if family == "trtllm-legacy":
        return params.legacy_scale * params.time_scale
    if family in ("vllm", "vllm-v1", "tgi"):
        return params.vllm_scale * params.time_scale
    if family == "sglang":
        return params.sglang_scale * params.time_scale
    if family == "trtllm-pytorch":
        return params.trtllm_pytorch_scale * params.time_scale
    return params.time_scale


def fixed_scale(engine: str, params: EffParams) -> float:
    """The multiplier on an engine's fixed costs (per step, per layer, per collective call).

    The engines only the MoE rows measured (SGLang, TensorRT-LLM's PyTorch backend) pay their own fixed costs
    per step and per layer (SGLang, one CUDA graph a step, at most the dense fit's), apart from how fast their
    kernels run: one multiplier for both had to choose between SGLang's batch-1 decode and its compute-bound
    wide-EP prefill. The engines the dense fit measured keep one multiplier for both."""
    family = engine_family(engine)
    if family == "sglang":
        return params.sglang_fixed_ratio * params.time_scale
    if family == "trtllm-pytorch":
        return params.trtllm_pytorch_fixed_ratio * params.time_scale
    return engine_scale(engine, params)


def op_times(table: OpTable, chip: Chip, params: EffParams, engine: str = "trtllm") -> tuple[np.ndarray, np.ndarray]:
    """Compute-limited and memory-limited time of every operator, arrays (S, n)."""
    kind = table.kind
    # Engines run autotuned (split-K / stream-K) GEMM kernels that avoid the wave tails of a stand-alone
    # library call, so their small-M loss is the smooth rows/(rows + m_half) curve, not tile quantisation.
    # grouped expert GEMMs (DeepGEMM, CUTLASS grouped, swap-AB for few rows per expert) have their own half-point
    m_half = np.where(table.expert, params.moe_m_half, params.gemm_m_half)
    shape_eff = np.where(table.gemm_m > 0, table.gemm_m / (table.gemm_m + m_half), 1.0)
    gemm_eff = (params.gemm_eff * params.engine_gemm_ratio * np.where(table.lowp, params.lowp_ratio, 1.0)
                * np.where(table.expert, params.moe_eff, 1.0))
    eff_c = np.where(kind == GEMM, gemm_eff * shape_eff, params.attn_eff)
    kv_eff = params.mem_eff * params.kv_mem_eff
    if engine_family(engine) == "trtllm-legacy":  # no GQA-aware decode kernel: KV re-read per query head
        kv_eff = kv_eff / (1.0 + params.legacy_gqa_reread * (table.gqa_group - 1.0))
    eff_m = np.where(kind == ATTN_DECODE, kv_eff, params.mem_eff)
    eff_m = np.where(table.expert, eff_m * params.moe_eff, eff_m)
    eff_m = np.where(kind == ELEMENTWISE, eff_m / params.elem_scale, eff_m)
    tc = table.flops / (table.peak * eff_c)
    tm = table.bytes / (chip.mem_bw * eff_m)
    return tc, tm


def comm_time(table: OpTable, chip: Chip, params: EffParams) -> np.ndarray:
    """Time of the step's tensor-parallel all-reduces on the fabric the TP group spans."""
    fabric, bw, in_switch = System(chip, table.comm_group).fabric_for(table.comm_group)
    return table.comm_calls * allreduce_time(table.comm_bytes, table.comm_group, fabric, bw, params, in_switch)


def one_shot_allreduce(table: OpTable, chip: Chip, engine: str) -> float | None:
    """The latency of an engine's one-shot custom all-reduce over NVLink for the step's calls, where it is
    measured: SGLang's kernel on H100, 512 B-32 KB, 3.7-4.8 us on 2-4 GPUs and 5.7-7.8 us on 8
    (github.com/sgl-project/sglang/pull/2904, without CUDA graphs; the default since SGLang 0.4.4). The
    message-size part stays with the bandwidth term. None where no such figure applies."""
    if table.comm_group <= 1 or not table.comm_calls or engine_family(engine) != "sglang":
        return None
    fabric = System(chip, table.comm_group).fabric_for(table.comm_group)[0]
    if fabric not in ("nvswitch", "nvlink-bridge"):
        return None
    return table.comm_calls * (SGLANG_ONE_SHOT_AR_S[0] if table.comm_group <= 4 else SGLANG_ONE_SHOT_AR_S[1])


def comm_latency(table: OpTable, chip: Chip, params: EffParams) -> float:
    """The latency (alpha) part of the step's all-reduces: what they cost with empty messages."""
    if table.comm_group <= 1 or not table.comm_calls:
        return 0.0
    fabric, bw, in_switch = System(chip, table.comm_group).fabric_for(table.comm_group)
    return table.comm_calls * float(allreduce_time(0.0, table.comm_group, fabric, bw, params, in_switch))


def a2a_time(table: OpTable, chip: Chip, params: EffParams) -> np.ndarray:
    """Time of the step's MoE dispatch and combine all-to-alls: the scale-up links and the scale-out NIC
    carry their shares at once, so the slower of the two sets each call's time."""
    if not table.a2a_calls or table.a2a_intra is None:
        return np.zeros(table.flops.shape[0])
    up_kind, up_bw, _ = System(chip, chip.scaleup_domain).fabric_for(max(chip.scaleup_domain, 1))
    out_bw = chip.scaleout_bw or DEFAULT_NIC_BW
    intra = table.a2a_intra / (up_bw * params.comm_eff[up_kind])
    inter = table.a2a_inter / (out_bw * params.comm_eff["roce"])
    return table.a2a_calls * (params.a2a_alpha + np.maximum(intra, inter))


def time_ops(table: OpTable, chip: Chip, params: EffParams, engine: str = "trtllm") -> StepCost:
    """Time of each step: soft roofline per operator + collectives + fixed overheads."""
    tc, tm = op_times(table, chip, params, engine)
    t_ops = soft_roofline(tc, tm, params.roof_q)
    compute_bound = tc >= tm
    compute = np.where(compute_bound, t_ops, 0.0).sum(axis=1)
    memory = np.where(compute_bound, 0.0, t_ops).sum(axis=1)
    a2a = a2a_time(table, chip, params)
    if table.overlap:
        # micro-batch overlap: the other micro-batch's kernels run under the all-to-all on the compute units its
        # kernels leave free, so the step lasts max(a2a, work + a2a x share); beyond the work, that much shows
        work = compute + memory
        share = table.a2a_sm_share if table.a2a_sm_share is not None else 0.0
        a2a = np.maximum(a2a, work + a2a * share) - work
    comm = comm_time(table, chip, params) + a2a
    # engines that launch every kernel from the host (TensorRT-LLM 0.5/0.6, vLLM --enforce-eager) pay the
    # per-layer cost measured on the former
    eager = table.eager or engine_family(engine) == "trtllm-legacy"
    layer = params.t_layer * (params.legacy_layer_ratio if eager else 1.0)
    host = params.t_host_step if table.host_exposed else 0.0
    overhead = np.full_like(compute, params.t_step + host + layer * table.layers_per_device
                            + params.t_moe_layer * table.moe_layers)
    scale = engine_scale(engine, params)
    # the engine's kernels scale with its multiplier; its fixed costs (and the collectives' latency) with its own
    latency = min(comm_latency(table, chip, params), float(comm.min()))   # the fitted latency inside `comm`
    fixed_mult = fixed_scale(engine, params)
    one_shot = one_shot_allreduce(table, chip, engine)
    # the engine's own one-shot all-reduce, measured, replaces the fitted latency where it applies
    paid = latency * fixed_mult if one_shot is None else one_shot * params.time_scale
    fixed = overhead * fixed_mult + paid
    stage = (compute + memory + comm - latency) * scale + fixed
    chips = table.comm_group * table.pp
    # the chip draws its busy power while kernels run; a step over the power limit runs at a lower clock
    power = device_energy(table, chip, stage, (compute + memory) * scale)
    slow = 1.0 / power.clock
    stage = power.stage_time
    # every chip of the replica spends one stage's energy on the step in each of the pp stages
    energy = power.joules * table.pp * chips
    return StepCost(time=stage * table.pp, compute=compute * scale * slow, memory=memory * scale * slow,
                    communication=(comm - latency) * scale * slow, overhead=fixed * slow, energy=energy,
                    stage_time=stage)


__all__ = ["ATTN_PREFILL", "StepCost", "comm_time", "op_times", "soft_roofline", "time_ops"]
