"""Answer `predict` queries: plan each scenario once (physics, schedules), then time it with parameters.

A `Plan` holds everything that does not depend on efficiency parameters (operator tables, batching
schedules), so calibration can re-time hundreds of queries per trial parameter set in milliseconds.
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from tokenfab import catalog
from tokenfab.bands import bands_for
from tokenfab.capacity_query import plan_capacity
from tokenfab.deployment import (
    Deployment,
    DeploymentError,
    engine_family,
    eplb_redundant_experts,
    host_overlap_default,
    kv_capacity_tokens,
)
from tokenfab.forked import stop_all
from tokenfab.hardware import Chip, System
from tokenfab.model import LayerGroup, ModelSpec, load_model
from tokenfab.perf.collectives import allreduce_time, busbw
from tokenfab.perf.energy import energy_scopes, host_power_w
from tokenfab.perf.kernels import STREAM_KERNELS, gemm_tile_efficiency, stream_bandwidth
from tokenfab.perf.ops import GEMM, build_ops
from tokenfab.perf.params import Calibration, EffParams, shipped_calibration
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.timing import StepCost, comm_time, op_times, soft_roofline, time_ops
from tokenfab.phases import decode_step, prefill_step
from tokenfab.queries import SCENARIO_METRICS, Query
from tokenfab.query_hints import read_hints
from tokenfab.query_plan import Plan, QueryError, query_lengths
from tokenfab.serve.batching import max_concurrency, schedule_offline, static_batch, steady_state
from tokenfab.serving_query import REQUESTS_NOTE, plan_serving, serving_lengths, serving_run_key
from tokenfab.silicon import DesignError, resolve_chip
from tokenfab.speculation import default_acceptance
from tokenfab.units import PRECISION_BYTES

# Weight formats that a config.json's `quantization_config.quant_method` names, as tokenfab precisions.
NATIVE_PRECISIONS = {"fp8": "fp8", "mxfp4": "fp4", "nvfp4": "fp4", "modelopt_fp4": "fp4"}


def native_precision(model_id: str) -> str:
    """The weight precision a checkpoint ships in (DeepSeek-V3/R1 and Kimi-K2 FP8, gpt-oss MXFP4), else bf16."""
    try:
        cfg = catalog.model_config(model_id)
    except (KeyError, ValueError):
        return "bf16"
    method = str(((cfg.get("text_config") or cfg).get("quantization_config") or cfg.get("quantization_config")
                  or {}).get("quant_method", "")).lower()
    return NATIVE_PRECISIONS.get(method, "bf16")


def default_kv_precision(precision: str, engine: str) -> str:
    """The KV-cache dtype an engine picks when the query does not say. SGLang keeps the activation dtype
    (`--kv-cache-dtype auto`: 16-bit for FP8 and FP4 checkpoints); TensorRT-LLM quantises the cache with the
    checkpoint, and the FP8 vLLM submissions measured here (MLPerf ROCm) ran an FP8 cache too."""
    if engine_family(engine) == "sglang":
        return precision if PRECISION_BYTES[precision] >= 2 else "bf16"
    return precision if PRECISION_BYTES[precision] >= 1 else "fp8"


def _default_layout(q: Query, model: ModelSpec) -> tuple[int, int, int]:
    """(tp, pp, ep) when a query states none: one chip per replica if nothing else is said; a MoE model
    on several chips of one unstated layout is served as SGLang/DeepSeek do, data-parallel attention with
    the experts spread over all of them (the notes' 'rank = GPU under DP attention')."""
    hints = read_hints(q.engine, q.note)
    if q.tp or q.ep or (q.pp or 1) > 1:
        tp, ep = q.tp or 1, q.ep or 1
        if hints.attn_dp and tp > 1 and ep >= tp and tp % hints.attn_dp == 0:
            tp //= hints.attn_dp   # '--tp 8 --ep 8' with attention DP8 is the tp=1, ep=8 layout
        return tp, q.pp or 1, ep
    width = q.devices // (q.replicas or q.devices)
    if q.replicas is None and model.is_moe and q.devices > 1:
        width = max(n for n in range(1, q.devices + 1) if q.devices % n == 0 and model.experts % n == 0)
        return 1, 1, width
    return max(width, 1), 1, 1


def query_deployment(q: Query, model: ModelSpec, chip: Chip) -> Deployment:
    """The replica a query describes (parallelism, precisions, speculation, engine), checked against the chip."""
    precision = q.precision or native_precision(q.model or "")
    if precision not in PRECISION_BYTES:
        raise QueryError(f"field 'precision' = {precision!r}: allowed {', '.join(sorted(PRECISION_BYTES))}")
    hints = read_hints(q.engine, q.note)
    # FP8 attention kernels read an FP8 cache
    kv = q.kv_precision or ("fp8" if hints.fp8_attention else default_kv_precision(precision, q.engine))
    mtp = q.mtp if q.mtp is not None else (hints.mtp or 0)
    # a stated acceptance is checked as given; a published or default one is capped at the drafts + 1
    accept = q.accept or min(hints.accept or default_acceptance(q.model or "", mtp), mtp + 1.0)
    tp, pp, ep = _default_layout(q, model)
    # MXFP4/NVFP4 checkpoints run weight-only (4-bit weights, 16-bit math) on chips without 4-bit units;
    # any other format needs the chip's own units (16-bit formats stand in for each other)
    act = precision if chip.supports(precision) or PRECISION_BYTES[precision] >= 1 else "bf16"
    if not chip.supports(act) and not (PRECISION_BYTES[act] == 2 and chip.supports("bf16")):
        have = ", ".join(p for p in PRECISION_BYTES if chip.supports(p))
        raise QueryError(f"field 'precision' = {precision!r}: {chip.id} has no {precision} units (it has {have})")
    engine = q.engine
    if hints.pytorch_backend and engine_family(engine) == "trtllm":
        engine = f"{engine} (pytorch backend)"
    dep = Deployment(tp=tp, pp=pp, ep=ep, weight_precision=precision, act_precision=act, kv_precision=kv,
                     engine=engine, max_batch=q.max_batch, max_num_tokens=hints.max_num_tokens, mtp=mtp, accept=accept,
                     redundant_experts=eplb_redundant_experts(model, tp, ep), overlap=hints.overlap,
                     cuda_graphs=not hints.eager, micro_batches=hints.micro_batches if hints.overlap else 1,
                     fp8_attention=hints.fp8_attention and chip.supports("fp8") and PRECISION_BYTES[kv] <= 1,
                     host_overlap=(hints.host_overlap if hints.host_overlap is not None
                                   else host_overlap_default(engine, mtp)))
    try:
        dep.check(model, chip)
    except (DeploymentError, ValueError) as err:
        raise QueryError(str(err)) from None
    if q.devices % dep.devices:
        raise QueryError(f"field 'devices' = {q.devices} is not a multiple of the replica's {dep.devices} chips "
                         f"(max(tp, ep) x pp)")
    return dep


def query_replicas(q: Query, dep: Deployment | None = None) -> int:
    """Model replicas behind the query: stated, or devices / chips per replica (the deployment's, else
    max(tp, ep) x pp from the query)."""
    width = dep.devices if dep else max(q.tp or 1, q.ep or 1) * (q.pp or 1)
    return q.replicas or max(q.devices // width, 1)


def _throughput_metrics(q: Query, chip: Chip, out_tps: float, isl: float, osl: float, energy_j: float,
                        seconds: float, out_tokens: float, replicas: int) -> dict[str, float]:
    """Per-system throughput plus the per-device, total-token, request and energy variants.
    `energy_j`, `seconds` and `out_tokens` describe one replica; power is scaled to all replicas.
    Energy is the accelerators' (prefill charged to output tokens); `_server` and `_facility` add the rest of the
    server and the datacenter's overhead."""
    total = out_tps
    power = energy_j / seconds * replicas
    per_token = energy_j / out_tokens
    return {
        "output_tokens_per_s": total,
        "output_tokens_per_s_per_device": total / q.devices,
        "total_tokens_per_s_per_device": total * (isl + osl) / osl / q.devices,
        "requests_per_s": total / osl,
        "avg_power_w": power,
        "joules_per_output_token": per_token,
        **energy_scopes(power, per_token, host_power_w(chip) * q.devices),
    }


def _plan_engine(q: Query, chip: Chip) -> Plan:
    if not q.model:
        raise QueryError(f"field 'model' is required for scenario {q.scenario!r}")
    try:
        model = load_model(q.model)
    except (KeyError, ValueError) as err:
        raise QueryError(str(err)) from None
    dep = query_deployment(q, model, chip)
    replicas = query_replicas(q, dep)
    if q.scenario == "layer":  # one layer is timed in isolation: the whole model need not fit
        return _plan_layer(q, model, chip, dep)
    kv_tokens = kv_capacity_tokens(model, chip, dep)
    if kv_tokens < 1:
        raise QueryError(f"model {q.model} does not fit on {dep.devices} x {chip.id} at {dep.weight_precision}: "
                         "weights leave no memory for KV cache (raise tp/pp or lower precision)")
    engine = dep.engine
    phase = read_hints(q.engine, q.note).phase
    if phase == "prefill" and q.scenario in ("offline", "static", "server"):
        return _plan_prefill_phase(q, model, chip, dep, replicas)
    if phase == "decode" and q.scenario in ("offline", "static", "concurrency"):
        return _plan_decode_phase(q, model, chip, dep, replicas, kv_tokens)
    if q.scenario == "prefill":
        isl = float(q.input_len or 0) or query_lengths(q, q.model)[0]
        batch = q.batch or 1
        table = build_ops(model, chip, dep, StepShapes.prefill(batch, isl))

        def evaluate_prefill(p: EffParams) -> dict[str, float]:
            cost = time_ops(table, chip, p, engine)
            return {"ttft_ms_mean": float(cost.time[0]) * 1e3}
        return Plan(q, chip, evaluate_prefill)

    isl, osl = query_lengths(q, q.model)
    if q.scenario == "static":
        batch = q.batch or 1
        if batch * (isl + osl) > kv_tokens:
            raise QueryError(f"field 'batch' = {batch}: {batch} x {isl + osl:.0f} tokens exceed the KV capacity "
                             f"of {kv_tokens:.0f} tokens on {dep.devices} x {chip.id}")
        steps, weights = static_batch(batch, int(isl), int(osl), accept=dep.accept)
        table = build_ops(model, chip, dep, steps)

        def evaluate_static(p: EffParams) -> dict[str, float]:
            cost = time_ops(table, chip, p, engine)
            seconds = float(np.dot(weights, cost.time))
            energy = float(np.dot(weights, cost.energy))
            out = batch * osl
            m = _throughput_metrics(q, chip, out / seconds * replicas, isl, osl, energy, seconds, out, replicas)
            m["step_ms_mean"] = seconds / osl * 1e3
            m["ttft_ms_mean"] = float(cost.time[0]) * 1e3
            m["tpot_ms_mean"] = (float(np.dot(weights[1:], cost.time[1:]) / max(weights[1:].sum(), 1)) * 1e3
                                 / dep.accept)
            return m
        return Plan(q, chip, evaluate_static)

    if q.scenario == "capacity":   # bracketed by the offline throughput of the same system
        offline = _plan_engine(q.model_copy(update={"scenario": "offline", "metric": None}), chip)
        return plan_capacity(q, model, chip, dep, replicas, isl, osl,
                             lambda p: offline.evaluate(p)["requests_per_s"])
    if q.scenario == "offline":
        preset = dep.preset
        conc = max_concurrency(kv_tokens, isl, osl, dep.batch_limit, bool(preset["reserve_full_sequence"]))
        if q.concurrency:   # a benchmark client that keeps only so many requests in flight
            conc = min(conc, -(-q.concurrency // replicas))
        if conc < 1:
            raise QueryError(f"one sequence of {isl + osl:.0f} tokens does not fit the KV cache "
                             f"({kv_tokens:.0f} tokens) of {dep.devices} x {chip.id}")
        n_requests = _finite_requests(q)
        if n_requests:
            return _plan_offline_finite(q, model, chip, dep, replicas, n_requests, isl, osl, conc)
        state = steady_state(isl, osl, conc, dep.token_budget, dep.accept)
        table = build_ops(model, chip, dep, state.step)

        def evaluate_offline(p: EffParams) -> dict[str, float]:
            cost = time_ops(table, chip, p, engine)
            stage = float(cost.stage_time[0])
            out_tokens = state.requests_per_step * osl
            m = _throughput_metrics(q, chip, out_tokens / stage * replicas, isl, osl, float(cost.energy[0]) / dep.pp,
                                    stage, out_tokens, replicas)
            m["tpot_ms_mean"] = float(cost.time[0]) / dep.accept * 1e3
            m["concurrency"] = float(conc)
            return m
        return Plan(q, chip, evaluate_offline)
    return plan_serving(q, model, chip, dep, replicas, isl, osl)


def _plan_prefill_phase(q: Query, model: ModelSpec, chip: Chip, dep: Deployment, replicas: int) -> Plan:
    """A prefill pool measured alone (decode 'unlimited'): input tokens/s at saturation."""
    if not q.input_len:
        raise QueryError("field 'input_len' is required for a prefill-only measurement (prompt tokens, > 0)")
    isl = float(q.input_len)
    shape = prefill_step(dep, isl)
    table = build_ops(model, chip, dep, shape)
    tokens = float(shape.prefill_tokens[0])

    def evaluate(p: EffParams) -> dict[str, float]:
        cost = time_ops(table, chip, p, dep.engine)
        stage = float(cost.stage_time[0])
        per_s = tokens / stage * replicas
        return {"total_tokens_per_s_per_device": per_s / q.devices, "input_tokens_per_s": per_s,
                "ttft_ms_mean": float(cost.time[0]) * 1e3, "output_tokens_per_s": per_s / isl,
                "requests_per_s": per_s / isl, "avg_power_w": float(cost.energy[0]) / stage * replicas / dep.pp}
    return Plan(q, chip, evaluate)


def _plan_decode_phase(q: Query, model: ModelSpec, chip: Chip, dep: Deployment, replicas: int,
                       kv_tokens: float) -> Plan:
    """A decode pool measured alone (prefill 'unlimited'): `batch` (static) or `concurrency` sequences per
    replica kept decoding at the phase's mean context, each step emitting `accept` tokens per sequence."""
    if not q.input_len:
        raise QueryError("field 'input_len' is required for a decode-only measurement (context tokens, > 0)")
    isl, osl = float(q.input_len), float(q.output_len or 0.0)
    if q.scenario == "offline":
        batch = float(max_concurrency(kv_tokens, isl, osl, dep.batch_limit, bool(dep.preset["reserve_full_sequence"])))
    else:
        total = q.batch if q.scenario == "static" else q.concurrency
        if not total:
            name = "batch" if q.scenario == "static" else "concurrency"
            raise QueryError(f"field '{name}' is required for a decode-only measurement (sequences, >= 1)")
        batch = total / replicas
    if batch * (isl + osl) > kv_tokens or batch < 1:
        raise QueryError(f"{batch:.0f} sequences of {isl + osl:.0f} tokens exceed the KV capacity of "
                         f"{kv_tokens:.0f} tokens on {dep.devices} x {chip.id}")
    table = build_ops(model, chip, dep, decode_step(batch, isl, osl))
    first = build_ops(model, chip, dep, StepShapes.prefill(1, isl))   # a prompt in an idle prefill pool

    def evaluate(p: EffParams) -> dict[str, float]:
        cost = time_ops(table, chip, p, dep.engine)
        ttft = float(time_ops(first, chip, p, dep.engine).time[0]) * 1e3
        stage = float(cost.stage_time[0])
        out = batch * dep.accept
        m = _throughput_metrics(q, chip, out / stage * replicas, isl, max(osl, 1.0), float(cost.energy[0]) / dep.pp,
                                stage, out, replicas)
        tpot = float(cost.time[0]) / dep.accept * 1e3
        m.update(tpot_ms_mean=tpot, tpot_ms_p50=tpot, tpot_ms_p99=tpot, itl_ms_mean=tpot, ttft_ms_mean=ttft,
                 ttft_ms_p50=ttft, ttft_ms_p99=ttft,
                 step_ms_mean=float(cost.time[0]) * 1e3, concurrency=batch * replicas)
        return m
    return Plan(q, chip, evaluate)


_RELEASED = re.compile(r"(\d[\d,]*) (?:requests|prompts) (?:at request rate|released|at once)")


def _finite_requests(q: Query) -> int | None:
    """A QPS=INF serving run releases a known number of requests (stated in the query's note)."""
    if q.metric is None or not q.metric.startswith(("ttft", "tpot", "itl")):
        return None
    match = REQUESTS_NOTE.search(q.note or "") or _RELEASED.search(q.note or "")
    if not match:
        raise QueryError("offline latency needs the number of requests released (a note 'N requests')")
    return int(match.group(1).replace(",", ""))


def _plan_offline_finite(q: Query, model: ModelSpec, chip: Chip, dep: Deployment, replicas: int,
                         n_requests: int, isl: float, osl: float, conc: int) -> Plan:
    per_replica = -(-n_requests // replicas)
    sched = schedule_offline(per_replica, int(isl), int(osl), conc, dep.token_budget)
    table = build_ops(model, chip, dep, sched.steps)

    def evaluate(p: EffParams) -> dict[str, float]:
        cost = time_ops(table, chip, p, dep.engine)
        end = np.cumsum(cost.time)
        ttft = end[sched.first_token_step]
        tpot = (end[sched.last_token_step] - ttft) / max(osl - 1, 1)
        seconds = float(end[-1])
        out = per_replica * osl
        m = _throughput_metrics(q, chip, out / seconds * replicas, isl, osl, float(cost.energy.sum()), seconds, out,
                                replicas)
        m.update(_latency_stats("ttft", ttft), **_latency_stats("tpot", tpot))
        m["itl_ms_mean"] = m["tpot_ms_mean"]
        return m
    return Plan(q, chip, evaluate)


def _latency_stats(name: str, seconds: np.ndarray) -> dict[str, float]:
    ms = seconds * 1e3
    return {f"{name}_ms_mean": float(ms.mean()), f"{name}_ms_p50": float(np.percentile(ms, 50)),
            f"{name}_ms_p99": float(np.percentile(ms, 99))}


def _plan_layer(q: Query, model: ModelSpec, chip: Chip, dep: Deployment) -> Plan:
    shape = q.shape or {}
    batch = q.batch or 1
    one = replace(model, layers=1, layer_groups=(LayerGroup(1, model.is_moe),))
    if shape.get("phase") == "decode":
        kv_len = float(shape.get("kv_len") or 0)
        if kv_len < 0:
            raise QueryError(f"field 'shape.kv_len' = {kv_len:g}: tokens already in the cache, 0 or more")
        steps = StepShapes.decode(batch, kv_len)
    elif shape.get("phase") == "prefill":
        seq_len = float(shape.get("seq_len") or 0)
        if seq_len < 1:
            raise QueryError(f"field 'shape.seq_len' = {seq_len:g}: prompt tokens, 1 or more")
        steps = StepShapes.prefill(batch, seq_len)
    else:
        raise QueryError("field 'shape.phase' must be 'prefill' (with seq_len) or 'decode' (with kv_len)")
    table = build_ops(one, chip, dep, steps)
    keep = np.array([n != "lm_head" for n in table.names])

    def evaluate(p: EffParams) -> dict[str, float]:
        tc, tm = op_times(table, chip, p, dep.engine)
        t_ops = soft_roofline(tc, tm, p.roof_q)[:, keep].sum(axis=1)
        comm = comm_time(table, chip, p)
        # the measurement sums separately timed operators, so each pays a stand-alone kernel cost
        kernels = int(keep.sum()) + 2 * (dep.tp > 1)
        return {"layer_ms": float((t_ops + comm)[0] + kernels * p.t_kernel) * 1e3}
    return Plan(q, chip, evaluate)


def _plan_gemm(q: Query, chip: Chip) -> Plan:
    shape = q.shape or {}
    try:
        m, n, k = (float(shape[d]) for d in ("m", "n", "k"))
    except (KeyError, TypeError, ValueError):
        raise QueryError("field 'shape' must hold positive m, n and k for a gemm query") from None
    if min(m, n, k) <= 0:
        raise QueryError("field 'shape': m, n and k must be positive")
    precision = q.precision or "bf16"
    try:
        peak = chip.peak(precision)
    except ValueError as err:
        raise QueryError(str(err)) from None
    nbytes = (m * k + k * n + m * n) * PRECISION_BYTES[chip.compute_precision(precision)]
    lowp = PRECISION_BYTES[chip.compute_precision(precision)] < 2
    tiles = float(gemm_tile_efficiency(m, n, k, chip.compute_units))

    def evaluate(p: EffParams) -> dict[str, float]:
        eff = p.gemm_eff * (p.lowp_ratio if lowp else 1.0) * tiles
        tc = np.array(2 * m * n * k / (peak * eff))
        # a chip without device memory (an SRAM-only design) holds the operands on chip: compute sets the time
        tm = np.array(nbytes / (chip.mem_bw * p.mem_eff) if chip.mem_bw > 0 else 0.0)
        t = float(soft_roofline(tc, tm, p.roof_q)) + p.t_kernel
        return {"gemm_tflops": 2 * m * n * k / t / 1e12}
    return Plan(q, chip, evaluate)


def _plan_memcopy(q: Query, chip: Chip) -> Plan:
    shape = q.shape or {}
    kernel = str(shape.get("kernel") or "copy")
    if kernel not in STREAM_KERNELS:
        raise QueryError(f"field 'shape.kernel' = {kernel!r}: allowed {', '.join(sorted(STREAM_KERNELS))}")
    loads, stores = STREAM_KERNELS[kernel]
    elem = float(shape.get("element_bytes") or 8)
    if not 1 <= elem <= 64:
        raise QueryError(f"field 'shape.element_bytes' = {elem:g}: allowed 1 to 64 bytes")
    if chip.mem_bw <= 0:
        raise QueryError(f"field 'hardware': {chip.id} has no device memory to copy")

    def evaluate(p: EffParams) -> dict[str, float]:
        bw = stream_bandwidth(chip.mem_bw * p.mem_eff, chip.compute_units, chip.threads_per_unit, loads, stores,
                              elem, p.mem_latency)
        return {"memcopy_tbps": bw / 1e12}
    return Plan(q, chip, evaluate)


def _plan_allreduce(q: Query, chip: Chip) -> Plan:
    shape = q.shape or {}
    nbytes = float(shape.get("bytes") or 0)
    if nbytes <= 0:
        raise QueryError("field 'shape.bytes' must be a positive message size for an allreduce query")
    ranks = q.devices
    if ranks < 2:
        raise QueryError(f"field 'devices' = {ranks}: an all-reduce needs 2 or more devices")
    fabric, bw, in_switch = System(chip, ranks).fabric_for(ranks)

    def evaluate(p: EffParams) -> dict[str, float]:
        t = float(allreduce_time(nbytes, ranks, fabric, bw, p, in_switch))
        return {"allreduce_latency_ms": t * 1e3, "allreduce_busbw_gbps": float(busbw(nbytes, ranks, t)) / 1e9}
    return Plan(q, chip, evaluate)


_PLANNERS: dict[str, Callable[[Query, Chip], Plan]] = {
    "gemm": _plan_gemm, "memcopy": _plan_memcopy, "allreduce": _plan_allreduce,
}


def capped(chip: Chip, cap_w: float) -> Chip:
    """The chip under a power limit below its TDP (MLPerf MaxQ runs, datacenter operators): its steps run at the
    clock that keeps their power under the limit (`perf.energy.device_energy`)."""
    e = chip.energy
    if e is None:
        raise QueryError(f"field 'power_cap_w': {chip.id} has no power model (no TDP in the catalog)")
    if not e.static_w < cap_w:
        raise QueryError(f"field 'power_cap_w' = {cap_w:g} W: at or below {chip.id}'s idle power ({e.static_w:.0f} W)")
    return replace(chip, energy=replace(e, cap_w=min(cap_w, e.cap_w)))


def plan_query(q: Query, chips: Mapping[str, Chip] | None = None) -> Plan:
    """Build the parameter-independent part of a query's answer (raises `QueryError`).
    `chips`: devices outside the catalog (a measured CPU of a device profile), by id."""
    try:
        chip = chips[q.hardware] if chips and q.hardware in chips else resolve_chip(q.hardware)
    except (KeyError, DesignError) as err:
        raise QueryError(str(err)) from None
    if q.power_cap_w is not None:
        chip = capped(chip, q.power_cap_w)
    planner = _PLANNERS.get(q.scenario, _plan_engine)
    plan = planner(q, chip)
    group = q.devices if q.scenario == "allreduce" else (q.tp or 1)
    if group > 1 and q.scenario not in ("gemm", "memcopy"):
        plan = replace(plan, fabric=System(chip, group).fabric_for(group)[0])
    return plan


def answer(plan: Plan, calibration: Calibration | None = None) -> dict[str, float]:
    """Predicted metrics of a planned query: the scenario's contract metrics and the query's own."""
    cal = calibration or shipped_calibration()
    metrics = plan.evaluate(cal.for_chip(plan.chip))
    q = plan.query
    wanted = set(SCENARIO_METRICS[q.scenario]) | ({q.metric} if q.metric else set())
    if q.output_len is not None and q.output_len <= 1:   # one output token: no time between tokens to report
        wanted = {m for m in wanted if not m.startswith("tpot")} | ({q.metric} if q.metric else set())
    scope = q.power_scope or "accelerator"
    if scope != "accelerator" and "avg_power_w" in metrics:   # the query's boundary under the plain names
        metrics = {**metrics, "avg_power_w": metrics[f"avg_power_w_{scope}"],
                   "joules_per_output_token": metrics[f"joules_per_output_token_{scope}"]}
    missing = wanted - metrics.keys()
    if missing:
        raise QueryError(f"metric {sorted(missing)[0]!r} is not predicted for scenario {q.scenario!r}")
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        raise QueryError(f"no finite answer for {bad[0]!r}: the query's numbers leave the models' range")
    return {k: _round(v) for k, v in metrics.items()}


def _round(value: float) -> float:
    """Deterministic, readable output: 6 significant digits."""
    return float(f"{value:.6g}")


# no single query may stall a batch: past this the query is answered with an error and the batch goes on
QUERY_BUDGET_S = 300.0


class _OverBudget(Exception):
    pass


@contextmanager
def _budget(seconds: float | None) -> Iterator[None]:
    """Raise `_OverBudget` in this block after `seconds` of wall time (main thread on POSIX; elsewhere a no-op)."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    over = [False]

    def ring(_signum: int, _frame: Any) -> None:
        if not over[0]:
            raise _OverBudget
    previous = signal.signal(signal.SIGALRM, ring)
    # it rings again every 0.2 s: an exception raised where Python can only ignore it (a garbage-collector
    # callback) must not let the query run on unbounded
    signal.setitimer(signal.ITIMER_REAL, float(seconds), 0.2)
    try:
        yield
    finally:
        over[0] = True
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
        stop_all()   # a simulation forked for the query must not outlive it


def predict_one(q: Query, calibration: Calibration | None = None,
                budget_s: float | None = QUERY_BUDGET_S) -> dict[str, Any]:
    """The JSON object `predict` prints for one query: predicted metrics, or a one-line error (also when it
    runs past `budget_s` seconds)."""
    try:
        with _budget(budget_s):
            return _predict_one(q, calibration)
    except _OverBudget:
        return {"id": q.id, "error": f"no answer within {budget_s:g} s (the query's time budget)"}


def _predict_one(q: Query, calibration: Calibration | None = None) -> dict[str, Any]:
    chips = calibration.extra_chips() if calibration else None
    try:
        predicted = answer(plan_query(q, chips), calibration)
        saturated = bool(predicted.pop("saturated", 0.0))
        scoped = {"power_scope": q.power_scope or "accelerator"} if "avg_power_w" in predicted else {}
        return {"id": q.id, "predicted": predicted, "band": bands_for(q.scenario, predicted), **scoped,
                **({"saturated": True} if saturated else {})}
    except (QueryError, DeploymentError) as err:
        return {"id": q.id, "error": str(err)}
    except (ArithmeticError, ValueError, LookupError, TypeError, RecursionError, MemoryError) as err:
        # a query the checks let through but the models cannot answer: this query's error, not the batch's
        return {"id": q.id, "error": f"cannot answer: {type(err).__name__}: {str(err)[:200]}"}


SIMULATED = ("server", "concurrency", "capacity")


def predict_many(queries: list[Query], calibration: Calibration | None = None,
                 workers: int | None = None, budget_s: float | None = QUERY_BUDGET_S) -> list[dict[str, Any]]:
    """`predict_one` for every query, in order. Serving queries cost a simulation each, so they run in
    worker processes, grouped by configuration: the queries of one run (one per metric) share it."""
    results: list[dict[str, Any] | None] = [None] * len(queries)
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        if q.scenario in SIMULATED:
            groups.setdefault(serving_run_key(q), []).append(i)
        else:
            results[i] = predict_one(q, calibration, budget_s)
    workers = min(workers or os.cpu_count() or 1, len(groups))
    batches = [[queries[i] for i in idx] for idx in groups.values()]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            answers = list(pool.map(_predict_group, batches, [calibration] * len(batches),
                                    [budget_s] * len(batches)))
    else:
        answers = [_predict_group(batch, calibration, budget_s) for batch in batches]
    for idx, group_answers in zip(groups.values(), answers, strict=True):
        for i, result in zip(idx, group_answers, strict=True):
            results[i] = result
    return [r for r in results if r is not None]


def _predict_group(queries: list[Query], calibration: Calibration | None,
                   budget_s: float | None = QUERY_BUDGET_S) -> list[dict[str, Any]]:
    return [predict_one(q, calibration, budget_s) for q in queries]


__all__ = ["GEMM", "Plan", "QueryError", "StepCost", "answer", "plan_query", "predict_one", "query_deployment",
           "query_lengths", "query_replicas", "serving_lengths"]
