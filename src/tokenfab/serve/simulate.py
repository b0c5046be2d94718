"""`simulate()`: serve a request stream on a cluster of replicas and measure what users see.

Every step's duration comes from the step-cost model (through `StepTimer`, which equals `step_cost`),
so the analytic screen and the simulation rank designs the same way. Per-request records stream to
Parquet and into bounded-memory histograms; the step log streams through the real step-cost function
in vectorised chunks for energy and batch statistics.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from tokenfab.deployment import Deployment, kv_capacity_tokens
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.energy import energy_scopes, host_power_w
from tokenfab.perf.ops import build_ops
from tokenfab.perf.params import EffParams, shipped_calibration
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.steptimer import StepTimer
from tokenfab.perf.timing import time_ops
from tokenfab.serve.cluster import Cluster, Pools, RequestFeed
from tokenfab.serve.engine import BLOCK_TOKENS, EngineConfig, Seq
from tokenfab.serve.metrics import ClassMetrics, LogHistogram, StepStats, request_latencies
from tokenfab.workload import RequestTable

RECORD_COLUMNS = ("request", "class_id", "session", "turn", "replica", "arrival", "admitted", "first_token", "finish",
                  "input_len", "output_len", "cached", "preemptions")
_FLUSH = 65536
PREEMPTION_MODES = ("recompute", "swap")


@dataclass(frozen=True)
class ClassInfo:
    """What the metrics need of a request class: its name and SLO (seconds; None = no target)."""

    name: str
    ttft_slo: float | None = None
    tpot_slo: float | None = None
    percentile: float = 99.0


@dataclass
class SimResult:
    """The run's metrics (one JSON-able dict) and where the per-request records went."""

    metrics: dict[str, Any]
    records_path: str | None = None
    # whole-run latency histograms (seconds) by name (ttft, tpot, e2e): any percentile a caller needs
    latency: dict[str, LogHistogram] = field(default_factory=dict)

    def percentile_ms(self, name: str, p: float) -> float:
        return self.latency[name].percentile(p) * 1e3


def engine_config(model: ModelSpec, chip: Chip, dep: Deployment, preemption: str = "recompute",
                  prefix_caching: bool = True) -> EngineConfig:
    """Scheduler limits and KV pool of one replica from the engine preset and the memory left after weights."""
    if preemption not in PREEMPTION_MODES:
        raise ValueError(f"preemption = {preemption!r}: allowed {', '.join(PREEMPTION_MODES)}")
    kv = int(kv_capacity_tokens(model, chip, dep))
    preset = dep.preset
    return EngineConfig(kv_tokens=kv, max_batch=dep.batch_limit, token_budget=dep.token_budget,
                        reserve_full=bool(preset["reserve_full_sequence"]), preemption=preemption,
                        prefix_caching=prefix_caching, kv_bytes_per_token=model.kv_bytes_per_token(dep.kv_precision),
                        host_bw=chip.host_bw * dep.devices, accept=dep.accept)


def kv_transfer_time(model: ModelSpec, chip: Chip, dep: Deployment, params: EffParams) -> Callable[[int], float]:
    """P/D hand-off: a prompt's KV crosses the scale-out network, every chip of the replica sending its shard."""
    per_token = model.kv_bytes_per_token(dep.kv_precision)
    # a catalog chip without a stated NIC still sits in a server with one on its host link: not 1 B/s
    nic = chip.scaleout_bw if chip.scaleout_bw > 0 else chip.host_bw
    if nic <= 0:
        raise ValueError(f"{chip.id} has neither a scale-out NIC nor a host link: P/D disaggregation cannot move "
                         "the KV cache between pools")
    bw = nic * dep.devices * params.comm_eff["roce"]
    alpha = params.comm_alpha["roce"]
    return lambda tokens: alpha + tokens * per_token / bw


class _Recorder:
    """Finished requests: buffered, then folded into per-class metrics and (optionally) a Parquet file."""

    def __init__(self, classes: Sequence[ClassInfo], path: str | None, trace: str | None) -> None:
        self.classes = classes
        self.metrics = [ClassMetrics() for _ in classes]
        self.rows: list[tuple] = []
        self.rejected = 0
        self.first_arrival = math.inf
        self.last_finish = 0.0
        self.path = path
        self._writer = None
        self._tmp: str | None = None
        self._trace_path = trace
        self._trace = None
        if trace:   # written beside the target and renamed at the end, so a failed run leaves nothing
            fd, self._trace_tmp = tempfile.mkstemp(suffix=".json.part", dir=os.path.dirname(os.path.abspath(trace)))
            self._trace = os.fdopen(fd, "w")
            self._trace.write("[\n")

    def done(self, seq: Seq, now: float) -> None:
        if seq.preemptions < 0:
            self.rejected += 1
            return
        cls, session, turn = seq.info  # type: ignore[misc]
        self.rows.append((seq.rid, cls, session, turn, seq.replica, seq.arrival, seq.admit_t, seq.first_t, now,
                          seq.prompt, seq.tokens, seq.hit, seq.preemptions))
        if len(self.rows) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        cols = {name: np.array(col) for name, col in zip(RECORD_COLUMNS, zip(*self.rows, strict=True), strict=True)}
        self.rows = []
        self.first_arrival = min(self.first_arrival, float(cols["arrival"].min()))
        self.last_finish = max(self.last_finish, float(cols["finish"].max()))
        for i, info in enumerate(self.classes):
            mask = cols["class_id"] == i
            if mask.any():
                self.metrics[i].add({k: v[mask] for k, v in cols.items()}, info.ttft_slo, info.tpot_slo)
        if self.path:
            self._write_parquet(cols)
        if self._trace:
            self._write_trace(cols)

    def _write_parquet(self, cols: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        names = np.array([c.name for c in self.classes], dtype=object)
        ttft, tpot, e2e = request_latencies(cols)
        # what a reader wants without re-deriving it: the class by name, latencies in seconds
        derived = {"class_name": names[cols["class_id"]], "ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e}
        table = pa.table({**cols, **derived})
        if self._writer is None:
            folder = os.path.dirname(os.path.abspath(self.path)) or "."
            fd, self._tmp = tempfile.mkstemp(suffix=".parquet.part", dir=folder)
            os.close(fd)
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table)

    def _write_trace(self, cols: dict[str, np.ndarray]) -> None:
        """Chrome/Perfetto trace events: each request's queueing, prefill and decode spans on its replica."""
        assert self._trace is not None
        for i in range(cols["request"].size):
            rid, pid = int(cols["request"][i]), int(cols["replica"][i])
            spans = (("queue", cols["arrival"][i], cols["admitted"][i]),
                     ("prefill", cols["admitted"][i], cols["first_token"][i]),
                     ("decode", cols["first_token"][i], cols["finish"][i]))
            for name, a, b in spans:
                if math.isfinite(a) and math.isfinite(b) and b >= a:
                    self._trace.write(json.dumps({"name": name, "cat": "request", "ph": "X", "pid": pid, "tid": rid,
                                                  "ts": a * 1e6, "dur": (b - a) * 1e6}) + ",\n")

    def close(self, ok: bool) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            if ok and self.path:
                os.chmod(self._tmp, 0o644)   # mkstemp makes it the owner's alone; a result file is for reading
                os.replace(self._tmp, self.path)
            elif self._tmp:
                os.unlink(self._tmp)
        if self._trace:
            self._trace.write("{}]\n")
            self._trace.close()
            if ok:
                os.chmod(self._trace_tmp, 0o644)
                os.replace(self._trace_tmp, self._trace_path)
            else:
                os.unlink(self._trace_tmp)


class _StepLog:
    """The engine's step log, costed in vectorised chunks by the real step-cost function (energy, batches)."""

    def __init__(self, model: ModelSpec, chip: Chip, dep: Deployment, params: EffParams, max_batch: int) -> None:
        self.model, self.chip, self.dep, self.params = model, chip, dep, params
        self.buf: list[tuple[float, float, float, float, float, float]] = []
        self.stats = StepStats(max_batch)
        self.energy = 0.0

    def log(self, replica: int, seqs: float, ctx: float, p_tokens: float, p_pairs: float, logits: float,
            weight: float) -> None:
        buf = self.buf
        buf.append((seqs, ctx, p_tokens, p_pairs, logits, weight))
        if len(buf) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        # the rows' numbers as float64, as np.array(rows) makes them, without its per-row type discovery
        a = np.fromiter(chain.from_iterable(self.buf), float, 6 * len(self.buf)).reshape(-1, 6)
        self.buf = []
        shapes = StepShapes.build(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])
        cost = time_ops(build_ops(self.model, self.chip, self.dep, shapes), self.chip, self.params, self.dep.engine)
        # within a decode run time and energy are linear in context, so the run's mean context stands for it
        self.energy += float((cost.energy * a[:, 5]).sum())   # pairwise sum: the same on any core count
        self.stats.add(a[:, 0], a[:, 2], a[:, 5])


def simulate(model: ModelSpec, chip: Chip, dep: Deployment, chunks: Iterable[RequestTable],
             classes: Sequence[ClassInfo], pools: Pools | None = None, params: EffParams | None = None,
             preemption: str = "recompute", prefix_caching: bool = True, records_path: str | None = None,
             trace_path: str | None = None, progress: Callable[[], None] | None = None,
             cfg: EngineConfig | None = None, mark_time: float | None = None,
             watch: Callable[[Seq, float], None] | None = None, client_cap: int | None = None) -> SimResult:
    """Serve `chunks` (a request stream) and return the metrics; deterministic for a given stream.
    `cfg` overrides the replica's engine limits derived from the deployment (tests shrink the KV pool).
    `mark_time`: also report `late_output_tokens_per_s`, the rate from the first arrival at or after it to
    the last arrival (a saturated run's rate once its batch has filled). `watch` sees every finished request
    after it is recorded; an exception it raises ends the run (a search that already knows the answer).
    `client_cap`: requests the client keeps in flight at most (a benchmark's --max-concurrency); arrivals past
    it wait at the client, outside TTFT."""
    params = params or shipped_calibration().for_chip(chip)
    cfg = cfg or engine_config(model, chip, dep, preemption, prefix_caching)
    if cfg.kv_tokens < BLOCK_TOKENS:
        raise ValueError(f"model {model.name} leaves no KV cache on {dep.devices} x {chip.id}: raise tp or lower "
                         "the weight precision")
    timer = StepTimer(model, chip, dep, params, cfg.token_budget + cfg.max_batch)
    steplog = _StepLog(model, chip, dep, params, cfg.max_batch)
    recorder = _Recorder(classes, records_path, trace_path)
    done = recorder.done
    if watch is not None:
        def done(seq: Seq, now: float) -> None:
            recorder.done(seq, now)
            watch(seq, now)
    cluster = Cluster(timer, cfg, pools or Pools(), kv_transfer_time(model, chip, dep, params), done,
                      steplog.log)
    if mark_time is not None:
        cluster.mark_time = mark_time
    if client_cap is not None:
        cluster.max_in_flight = client_cap
    ok = False
    try:
        cluster.run(RequestFeed(chunks), progress)
        ok = True
    finally:
        recorder.close(ok)
    steplog.flush()
    total = _merge(recorder.metrics)
    return SimResult(_summarise(recorder, steplog, cluster, cfg, classes, dep), records_path if ok else None,
                     {"ttft": total.ttft, "tpot": total.tpot, "e2e": total.e2e})


def _summarise(rec: _Recorder, steps: _StepLog, cluster: Cluster, cfg: EngineConfig, classes: Sequence[ClassInfo],
               dep: Deployment) -> dict[str, Any]:
    total = _merge(rec.metrics)
    span = max(rec.last_finish - (rec.first_arrival if math.isfinite(rec.first_arrival) else 0.0), 1e-12)
    busy = sum(r.busy_time for r in cluster.replicas)
    chips = len(cluster.replicas) * dep.devices
    window = cluster.last_arrival - cluster.first_arrival
    # open-loop streams: tokens generated while requests were still arriving, over that window (the
    # steady-state throughput a long benchmark reports, free of the final drain)
    steady = (cluster.tokens_at_last_arrival * cfg.accept / window if window > 0
              else total.output_tokens / span)
    late = cluster.last_arrival - cluster.mark_arrival
    # between steps a replica's chips sit idle and draw idle power (the steps' energy holds only their own time)
    idle_w = steps.chip.energy.static_w if steps.chip.energy is not None else 0.0
    energy = steps.energy + idle_w * dep.devices * max(len(cluster.replicas) * span - busy, 0.0)
    m: dict[str, Any] = {
        "late_output_tokens_per_s": ((cluster.tokens_at_last_arrival - cluster.tokens_at_mark) * cfg.accept / late
                                     if late > 0 else steady),
        "requests": total.requests,
        "rejected": rec.rejected,
        "duration_s": span,
        "output_tokens_per_s": total.output_tokens / span,
        "steady_output_tokens_per_s": steady,
        "total_tokens_per_s": (total.output_tokens + total.input_tokens) / span,
        "requests_per_s": total.requests / span,
        "output_tokens_per_s_per_device": total.output_tokens / span / chips,
        "goodput_tokens_per_s": total.good_tokens / span,
        "goodput_requests_share": total.good_requests / max(total.requests, 1),
        "preemptions": total.preemptions,
        "prefix_cache_hit_tokens": total.cached_tokens,
        "kv_utilisation_mean": sum(r.kv_token_seconds for r in cluster.replicas) / max(busy, 1e-12) / cfg.kv_tokens,
        "kv_peak_tokens": max(r.kv_peak for r in cluster.replicas),
        "kv_capacity_tokens": cfg.kv_tokens,
        "mean_decode_batch": steps.stats.mean_batch(),
        "batch_histogram": steps.stats.histogram(),
        "energy_j": energy,
        "avg_power_w": energy / span,
        "joules_per_output_token": energy / max(total.output_tokens, 1),
        **energy_scopes(energy / span, energy / max(total.output_tokens, 1), host_power_w(steps.chip) * chips),
        "devices": chips,
    }
    for name, hist in (("ttft", total.ttft), ("tpot", total.tpot), ("e2e", total.e2e), ("queue", total.queue)):
        for stat, value in hist.summary().items():
            m[f"{name}_ms_{stat}"] = value
    m["itl_ms_mean"] = m["tpot_ms_mean"]
    per_class = {}
    # a step's energy is shared by the tokens it puts through the model (prompt tokens not served from the prefix
    # cache, and generated ones), so each class carries the run's energy in proportion to its tokens
    worked = [max(cm.input_tokens - cm.cached_tokens, 0) + cm.output_tokens for cm in rec.metrics]
    all_worked = max(sum(worked), 1)
    for info, cm, tokens in zip(classes, rec.metrics, worked, strict=True):
        if not cm.requests:
            continue
        p = info.percentile
        class_j = energy * tokens / all_worked
        entry = {"requests": cm.requests, "ttft_ms": cm.ttft.summary(), "tpot_ms": cm.tpot.summary(),
                 "goodput_tokens_per_s": cm.good_tokens / span,
                 "slo_met_share": cm.good_requests / cm.requests,
                 "energy_j": class_j, "joules_per_output_token": class_j / max(cm.output_tokens, 1),
                 "energy_share": tokens / all_worked}
        if info.ttft_slo is not None:
            entry[f"ttft_p{p:g}_ms"] = cm.ttft.percentile(p) * 1e3
            entry["ttft_slo_ms"] = info.ttft_slo * 1e3
        if info.tpot_slo is not None:
            entry[f"tpot_p{p:g}_ms"] = cm.tpot.percentile(p) * 1e3
            entry["tpot_slo_ms"] = info.tpot_slo * 1e3
        entry["slo_attained"] = bool(
            (info.ttft_slo is None or cm.ttft.percentile(p) <= info.ttft_slo)
            and (info.tpot_slo is None or cm.tpot.percentile(p) <= info.tpot_slo))
        per_class[info.name] = entry
    m["classes"] = per_class
    return m


def _merge(parts: list[ClassMetrics]) -> ClassMetrics:
    total = ClassMetrics()
    for part in parts:
        for name in ("ttft", "tpot", "e2e", "queue"):
            getattr(total, name).merge(getattr(part, name))
        for name in ("requests", "output_tokens", "input_tokens", "good_requests", "good_tokens", "preemptions",
                     "cached_tokens"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
    return total
