"""`simulate()`: serve a request stream on a cluster of replicas and measure what users see.

Every step's duration comes from the step-cost model (through `StepTimer`, which equals `step_cost`),
so the analytic screen and the simulation rank designs the same way. Per-request records stream to
Parquet, into bounded-memory histograms and (with a timeline) into a Chrome/Perfetto trace; the step log
streams through the real step-cost function in vectorised chunks for energy and batch statistics.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
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

    def __init__(self, classes: Sequence[ClassInfo], path: str | None) -> None:
        self.classes = classes
        self.metrics = [ClassMetrics() for _ in classes]
        self.rows: list[tuple] = []
        self.rejected = 0
        self.first_arrival = math.inf
        self.last_finish = 0.0
        self.path = path
        self._writer = None
        self._tmp: str | None = None
        self.timeline: _Timeline | None = None         # the --timeline trace, set once the cluster exists
        self._lanes: list[tuple[int, int, int]] = []   # with a timeline: each row's lanes (see _Timeline.finish)

    def done(self, seq: Seq, now: float) -> None:
        if seq.preemptions < 0:
            self.rejected += 1
            return
        cls, session, turn = seq.info  # type: ignore[misc]
        self.rows.append((seq.rid, cls, session, turn, seq.replica, seq.arrival, seq.admit_t, seq.first_t, now,
                          seq.prompt, seq.tokens, seq.hit, seq.preemptions))
        if self.timeline is not None:
            self._lanes.append(self.timeline.finish(seq, now))
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
        if self.timeline is not None:
            self.timeline.requests(cols, self._lanes, self.classes)
            self._lanes = []

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

    def close(self, ok: bool) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            if ok and self.path:
                os.chmod(self._tmp, 0o644)   # mkstemp makes it the owner's alone; a result file is for reading
                os.replace(self._tmp, self.path)
            elif self._tmp:
                os.unlink(self._tmp)
        if self.timeline is not None:
            self.timeline.close(ok)


class _Timeline:
    """The `--timeline` trace: Chrome/Perfetto Trace Event Format (a JSON array), streamed to a file beside the
    target and renamed at the end, so a failed run leaves nothing.

    Each replica is a process (pid = replica + 1: Perfetto reserves 0), named for its pool ("replica 0 (prefill)",
    "replica 2 (decode)", "replica 1"). Its requests lie on threads that are lanes (tid = lane + 1): a request takes
    the lowest lane of its replica free at its start, so concurrent requests stack and a replica has as many lanes
    as it ever held requests at once. A request is three slices, queue (arrival to admission), prefill (admission
    to first token) and decode (first token to finish), whose args carry its id, class, tokens, TTFT and TPOT;
    under P/D the first two lie on the prefill replica and decode (KV transfer included) on the decode replica.
    Counters per replica, sampled when a step starts and when the replica falls idle, each written only when it
    changes: batch (sequences decoding, and prefilling), KV cache tokens (held by sequences, and idle cached
    prefixes) and the waiting queue."""

    def __init__(self, path: str, cluster: Cluster) -> None:
        self.path = path
        pools = cluster.pools
        fd, self.tmp = tempfile.mkstemp(suffix=".json.part", dir=os.path.dirname(os.path.abspath(path)))
        self.file = os.fdopen(fd, "w")
        self.write = self.file.write
        if pools.disaggregated:
            names = ([f"replica {i} (prefill)" for i in range(pools.prefill)]
                     + [f"replica {pools.prefill + i} (decode)" for i in range(pools.decode)])
        else:
            names = [f"replica {i}" for i in range(pools.replicas)]
        self.replicas = cluster.replicas
        cluster.on_enter, cluster.on_handoff = self.enter, self.handoff
        n = len(names)
        self.ends: list[list[float]] = [[] for _ in range(n)]     # each lane's last request's end; inf while held
        self.released: list[list[tuple[float, int]]] = [[] for _ in range(n)]  # heaps of (end, lane) let go
        self.free: list[list[int]] = [[] for _ in range(n)]       # heaps of lanes known free at an earlier start
        self.lane: dict[int, int] = {}                            # request -> lane it holds on its replica now
        self.prefill_lane: dict[int, tuple[int, int]] = {}        # P/D request -> (prefill replica, lane)
        self.last: list[list[Any]] = [[None, None, None] for _ in range(n)]   # counters' last written values
        # the array's first element, so that every later one can open with a comma
        self.write("[\n" + _event("process_name", "M", 1, 1, args={"name": names[0]}))
        for i, (name, r) in enumerate(zip(names, cluster.replicas, strict=True)):
            if i:
                self.write(",\n" + _event("process_name", "M", i + 1, i + 1, args={"name": name}))
            self.write(",\n" + _event("process_sort_index", "M", i + 1, i + 1, args={"sort_index": i}))
            self.write(",\n" + _event("process_labels", "M", i + 1, i + 1, args={
                "labels": f"max batch {r.cfg.max_batch}, KV cache {r.cfg.kv_tokens} tokens"}))

    # --- lanes ---------------------------------------------------------------------------------

    def enter(self, seq: Seq, now: float, decode: bool) -> None:
        """A request starts on a replica: at its arrival, or on a decode replica at its first token."""
        r = seq.replica
        start = seq.first_t if decode else now
        ends, free, released = self.ends[r], self.free[r], self.released[r]
        while released and released[0][0] <= start:
            heappush(free, heappop(released)[1])
        skipped = []
        while free and ends[free[0]] > start:   # P/D: freed after this start, which is earlier than the last one
            skipped.append(heappop(free))
        if free:
            lane = heappop(free)
        else:
            lane = len(ends)
            ends.append(math.inf)
            self.write(",\n" + _event("thread_name", "M", r + 1, lane + 1, args={"name": f"lane {lane}"}))
            self.write(",\n" + _event("thread_sort_index", "M", r + 1, lane + 1, args={"sort_index": lane}))
        for x in skipped:
            heappush(free, x)
        ends[lane] = math.inf
        self.lane[seq.rid] = lane

    def _let_go(self, seq: Seq, now: float) -> int:
        r = seq.replica
        lane = self.lane.pop(seq.rid)
        self.ends[r][lane] = now
        heappush(self.released[r], (now, lane))
        replica = self.replicas[r]
        if replica.outstanding == 0:   # its last request left: it falls idle
            self._sample(r, replica, now)
        return lane

    def handoff(self, seq: Seq, now: float) -> None:
        """P/D: a request leaves its prefill replica for a decode replica."""
        self.prefill_lane[seq.rid] = (seq.replica, self._let_go(seq, now))

    def finish(self, seq: Seq, now: float) -> tuple[int, int, int]:
        """A request finished: (replica, lane) its queue and prefill lie on, and its decode lane."""
        lane = self._let_go(seq, now)
        r, first = self.prefill_lane.pop(seq.rid, (seq.replica, lane))
        return r, first, lane

    # --- counters ------------------------------------------------------------------------------

    def step(self, replica: int) -> None:
        """From the engine's step log: a step (or decode run) starts at the replica's clock, its batch admitted."""
        r = self.replicas[replica]
        self._sample(replica, r, r.clock)

    def _sample(self, index: int, r: Any, t: float) -> None:
        last = self.last[index]
        batch = (len(r.decoding), len(r.prefilling))
        kv = (r.kv_used - r.cache_idle, r.cache_idle)
        waiting = len(r.waiting)
        ts = t * 1e6
        pid = index + 1
        if batch != last[0]:
            last[0] = batch
            self.write(f',\n{{"name":"batch","ph":"C","pid":{pid},"tid":{pid},"ts":{ts},'
                       f'"args":{{"decoding":{batch[0]},"prefilling":{batch[1]}}}}}')
        if kv != last[1]:
            last[1] = kv
            self.write(f',\n{{"name":"kv cache tokens","ph":"C","pid":{pid},"tid":{pid},"ts":{ts},'
                       f'"args":{{"sequences":{kv[0]},"cached idle":{kv[1]}}}}}')
        if waiting != last[2]:
            last[2] = waiting
            self.write(f',\n{{"name":"queue","ph":"C","pid":{pid},"tid":{pid},"ts":{ts},'
                       f'"args":{{"waiting":{waiting}}}}}')

    # --- requests ------------------------------------------------------------------------------

    def requests(self, cols: dict[str, np.ndarray], lanes: list[tuple[int, int, int]],
                 classes: Sequence[ClassInfo]) -> None:
        """Three slices per finished request, on the lanes it held."""
        ttft, tpot, _ = request_latencies(cols)
        names = [json.dumps(c.name) for c in classes]
        write = self.write
        for (rid, cls, replica, arrival, admitted, first, finish, prompt, out, hit, pre, t1, t2,
             (p_replica, p_lane, lane)) in zip(
                cols["request"].tolist(), cols["class_id"].tolist(), cols["replica"].tolist(),
                cols["arrival"].tolist(), cols["admitted"].tolist(), cols["first_token"].tolist(),
                cols["finish"].tolist(), cols["input_len"].tolist(), cols["output_len"].tolist(),
                cols["cached"].tolist(), cols["preemptions"].tolist(), (ttft * 1e3).tolist(),
                (tpot * 1e3).tolist(), lanes, strict=True):
            if not (math.isfinite(arrival) and math.isfinite(admitted) and math.isfinite(first)):
                continue
            args = (f'{{"request":{rid},"class":{names[cls]},"prompt_tokens":{prompt},"output_tokens":{out},'
                    f'"cached_tokens":{hit},"preemptions":{pre},"ttft_ms":{t1},'
                    f'"tpot_ms":{t2 if t2 == t2 else "null"},"e2e_ms":{(finish - arrival) * 1e3}}}')
            head = f',\n{{"cat":"request","ph":"X","pid":{p_replica + 1},"tid":{p_lane + 1},"ts":'
            write(f'{head}{arrival * 1e6},"dur":{(admitted - arrival) * 1e6},"name":"queue","args":{args}}}')
            write(f'{head}{admitted * 1e6},"dur":{(first - admitted) * 1e6},"name":"prefill","args":{args}}}')
            write(f',\n{{"cat":"request","ph":"X","pid":{replica + 1},"tid":{lane + 1},"ts":{first * 1e6},'
                  f'"dur":{(finish - first) * 1e6},"name":"decode","args":{args}}}')

    def close(self, ok: bool) -> None:
        self.write("\n]\n")
        self.file.close()
        if ok:
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def _event(name: str, ph: str, pid: int, tid: int, **fields: Any) -> str:
    return json.dumps({"name": name, "ph": ph, "pid": pid, "tid": tid, **fields}, separators=(",", ":"))


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
    recorder = _Recorder(classes, records_path)
    done = recorder.done
    if watch is not None:
        def done(seq: Seq, now: float) -> None:
            recorder.done(seq, now)
            watch(seq, now)
    log_step = steplog.log
    if trace_path:   # the timeline's counters see each step; without one the log is the plain one
        def log_step(replica: int, seqs: float, ctx: float, p_tokens: float, p_pairs: float, logits: float,
                     weight: float) -> None:
            steplog.log(replica, seqs, ctx, p_tokens, p_pairs, logits, weight)
            timeline.step(replica)
    cluster = Cluster(timer, cfg, pools or Pools(), kv_transfer_time(model, chip, dep, params), done, log_step)
    if trace_path:
        recorder.timeline = timeline = _Timeline(trace_path, cluster)
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
