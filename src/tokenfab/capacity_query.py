"""Capacity under an SLO: the highest whole-system Poisson rate whose simulated run keeps every latency limit.

This is what an MLPerf Server result reports (the highest load whose run kept TTFT p99 and TPOT p99 within
the benchmark's limits), and what a planner needs. Near capacity a few percent of step-time error moves the
latencies by tens of percent, but the rate itself moves by only a few percent: the question is well posed.

Every probe replays one seeded request sample, its arrival times rescaled to the probe's rate (common random
numbers: for one sample the pass/fail boundary is monotone in the rate and no probe is noisier than another),
each run as long as the benchmark's (MLPerf: 600 s of arrivals at the probe's rate). An overloaded run above
the offline throughput measures the saturation rate (`highest_rate`); most MLPerf systems pass just under it,
so the search looks one tolerance step above it first, with a run that stops once a limit is broken beyond its
percentile, while the full run at the rate just under it goes on in a second process (`forked.Background`).
Where a latency limit binds lower, a bisection follows, each probe first running a fifth of its length:
latencies only grow with time near capacity, so a short run that already breaks a limit by a wide margin fails
at full length too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tokenfab.deployment import Deployment
from tokenfab.forked import Background
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.ops import build_ops
from tokenfab.perf.params import EffParams
from tokenfab.perf.timing import time_ops
from tokenfab.queries import Query, slo_limits
from tokenfab.query_plan import Plan, QueryError
from tokenfab.serve.batching import steady_state
from tokenfab.serve.capacity import log_bisect
from tokenfab.serve.engine import Seq
from tokenfab.serve.simulate import ClassInfo, SimResult, simulate
from tokenfab.serving_query import (
    MAX_SERVING_REQUESTS,
    SERVING_SEED,
    server_run_requests,
    serving_lengths,
    serving_pools,
    serving_run_key,
)
from tokenfab.workload import RequestTable

REL_TOL = 0.02          # the bisection stops when the bracket is within 2% (MLPerf submitters tune to ~1-2%)
SCREEN_SHARE = 0.2      # a probe's short run: this share of its requests
SCREEN_MARGIN = 1.25    # a short run failing a limit by this factor fails the probe
MIN_SCREEN_REQUESTS = 500
MAX_PROBES = 24
FIRST_LOW = 0.8         # the first lower probe when a limit binds below saturation, as a share of the upper bound
OVERLOAD = 1.15         # the saturation run's rate, over the offline estimate
NEAR_SATURATION = 0.99  # where the upward search starts, as a share of the saturation rate (assumed to pass)
ABOVE_SATURATION = 1.1  # the upward search's top, over the larger of the saturation and offline rates
_ANSWERS: dict[tuple, dict[str, float]] = {}


class Probe:
    """Runs the simulator at a rate on the common sample and says whether every limit held."""

    def __init__(self, q: Query, model: ModelSpec, chip: Chip, dep: Deployment, replicas: int, isl: float,
                 osl: float) -> None:
        self.q, self.model, self.chip, self.dep = q, model, chip, dep
        self.limits = slo_limits(q.slo or {})
        self.osl = osl
        self.pools = serving_pools(q, replicas)
        self.inputs, self.outputs = serving_lengths(q, isl, osl, MAX_SERVING_REQUESTS)
        gaps = np.random.default_rng(SERVING_SEED + 1).exponential(1.0, MAX_SERVING_REQUESTS)
        self.unit_arrivals = np.cumsum(gaps)        # arrivals at 1 request/s; a rate r divides them by r

    def run(self, rate: float, n: int, params: EffParams, mark: float | None = None,
            judge: bool = False) -> SimResult | None:
        """The sample's first `n` requests at `rate`; `mark` (share of the arrivals) times the later rate.
        `judge`: stop as soon as more requests broke a limit than its percentile allows (None: failed)."""
        table = RequestTable.single_turn(self.unit_arrivals[:n] / rate, self.inputs[:n], self.outputs[:n])
        mark_time = None if mark is None else float(self.unit_arrivals[int(n * mark)] / rate)
        try:
            return simulate(self.model, self.chip, self.dep, [table], [ClassInfo("all")], self.pools, params,
                            mark_time=mark_time, watch=_Judge(self.limits, n) if judge else None)
        except _Broken:
            return None

    def worst(self, result: SimResult) -> float:
        """The largest (measured / limit) over the limits: <= 1 means every limit held."""
        return max(result.percentile_ms(name, pct) / limit for name, pct, limit in self.limits)

    def __call__(self, rate: float, params: EffParams, screen: bool = True) -> tuple[bool, SimResult | None]:
        n = server_run_requests(self.q, rate, self.osl)
        short = max(int(n * SCREEN_SHARE), MIN_SCREEN_REQUESTS)
        if screen and short < n:
            first = self.run(rate, short, params)
            assert first is not None
            if not self.worst(first) <= SCREEN_MARGIN:
                return False, first
        result = self.run(rate, n, params, judge=True)
        return result is not None and self.worst(result) <= 1.0, result


class _Broken(Exception):
    """A run has already broken a limit beyond what its percentile allows."""


class _Judge:
    """Counts the finished requests over each limit; past the share the limit's percentile allows of the whole
    run, the run has failed whatever comes after, and is stopped."""

    def __init__(self, limits: list[tuple[str, float, float]], n: int) -> None:
        self.limits = [(name, limit / 1e3, (1.0 - pct / 100.0) * n + 1.0) for name, pct, limit in limits]
        self.over = [0] * len(limits)

    def __call__(self, seq: Seq, now: float) -> None:
        for i, (name, limit, allowed) in enumerate(self.limits):
            if name == "ttft":
                value = seq.first_t - seq.arrival
            elif name == "e2e":
                value = now - seq.arrival
            else:
                value = (now - seq.first_t) / (seq.tokens - 1) if seq.tokens > 1 else 0.0
            if value > limit:
                self.over[i] += 1
                if self.over[i] > allowed:
                    raise _Broken


def highest_rate(probe: Probe, params: EffParams, ceiling: float) -> tuple[float, SimResult | None, int]:
    """The highest passing rate; returns (rate, its run, probes).

    An overloaded short run first (above the offline `ceiling`): its completion rate while requests still
    arrive is the saturation rate mu, the most the system sustains. Above mu the queue grows for the whole
    run (1% over mu queues 6 s of arrivals by the end of a 600 s run), so a TTFT or end-to-end limit fails
    there and the answer lies near or below mu; without such a limit it is mu by definition. Most servers pass
    at `NEAR_SATURATION` x mu, so the search first looks just above it (an overloaded engine thrashes -
    preemption, prefill-heavy steps - so a stable load can sit a little above mu): one tolerance step up and,
    only if that passes, further up, while the full-length run at `first` goes on in a second process. If the
    rate near saturation fails, a latency limit binds lower and a bisection from there finds it."""
    n_over = max(int(server_run_requests(probe.q, ceiling, probe.osl) * SCREEN_SHARE), MIN_SCREEN_REQUESTS)
    over = probe.run(ceiling * OVERLOAD, n_over, params, mark=0.5)   # its later half: the batch has filled
    assert over is not None
    mu = float(over.metrics["late_output_tokens_per_s"]) / float(probe.outputs[:n_over].mean())
    first = mu * NEAR_SATURATION
    # the full-length run at `first` (the answer when nothing above passes) runs in a second process while this
    # one looks above it, nearest first: judged full runs, no screens (near saturation a short run cannot tell)
    above = first * (1.0 + REL_TOL)
    with Background(lambda: probe(first, params, screen=False)) as confirm:
        ok, res = probe(above, params, screen=False)
        probes = 2
        if ok:
            confirm.cancel()
            lo, best, calls = log_bisect(lambda r: probe(r, params, screen=False), above,
                                         max(mu, ceiling, above) * ABOVE_SATURATION, REL_TOL, res, MAX_PROBES - 2)
            return lo, best, probes + calls
        ok, res = confirm.result()
    if ok:
        return first, res, probes
    hi, lo = first, first * FIRST_LOW
    ok, res = probe(lo, params)
    probes += 1
    while not ok and probes < MAX_PROBES:      # nothing passes at the first low probe: widen downwards
        hi, lo = lo, lo / 2.0
        ok, res = probe(lo, params)
        probes += 1
    if not ok:
        return 0.0, res, probes
    lo, best, calls = log_bisect(lambda r: probe(r, params), lo, hi, REL_TOL, res, MAX_PROBES - probes)
    return lo, best, probes + calls


def tuned_batch(model: ModelSpec, chip: Chip, dep: Deployment, isl: float, osl: float, tpot_limit_s: float,
                params: EffParams) -> int:
    """The batch limit a tuned server sets for a TPOT limit (MLPerf submitters tune it to sit just under the
    limits): the largest per-replica batch, among powers of two up to the engine preset's, whose steady-state
    step (that many sequences decoding plus the prompt chunks that keep them replaced) emits a token within
    the limit. A larger batch only adds TPOT violations; a smaller one queues requests a stable load could take."""
    top = dep.batch_limit // dep.attn_dp
    candidates = sorted({2 ** k for k in range(int(math.log2(max(top, 1))) + 1)} | {top})
    best = candidates[0]
    for b in candidates:
        state = steady_state(isl, osl, b * dep.attn_dp, dep.token_budget, dep.accept)
        step = float(time_ops(build_ops(model, chip, dep, state.step), chip, params, dep.engine).time[0])
        if step / dep.accept <= tpot_limit_s:
            best = b
    return best


def plan_capacity(q: Query, model: ModelSpec, chip: Chip, dep: Deployment, replicas: int, isl: float, osl: float,
                  offline_rate: Callable[[EffParams], float]) -> Plan:
    """A `capacity` query: `offline_rate(params)` is the whole system's offline requests/s (the bracket).
    A query that leaves `max_batch` null gets a tuned server's (`tuned_batch`) where it sets a TPOT limit."""
    probe = Probe(q, model, chip, dep, replicas, isl, osl)
    config = serving_run_key(q)
    tpot = min((limit for name, _pct, limit in probe.limits if name == "tpot"), default=None)
    tune = q.max_batch is None and tpot is not None

    def evaluate(p: EffParams) -> dict[str, float]:
        key = (config, repr(p))
        if key not in _ANSWERS:
            probe.dep = dep.with_(max_batch=tuned_batch(model, chip, dep, isl, osl, tpot / 1e3, p)) if tune else dep
            rate, run, probes = highest_rate(probe, p, offline_rate(p))
            if rate <= 0 or run is None:
                worst = ", ".join(f"{n}_ms_p{pct:g} {run.percentile_ms(n, pct):,.0f} ms" for n, pct, _ in
                                  probe.limits) if run is not None else ""
                raise QueryError(f"field 'slo': no arrival rate keeps every limit on {q.devices} x {chip.id} "
                                 f"(at the lowest rate tried: {worst})")
            m = run.metrics
            n = int(m["requests"])
            out = {"requests_per_s": rate, "output_tokens_per_s": rate * float(probe.outputs[:n].mean()),
                   "capacity_probes": float(probes), "max_batch": float(probe.dep.batch_limit // probe.dep.attn_dp)}
            out["output_tokens_per_s_per_device"] = out["output_tokens_per_s"] / q.devices
            for name in ("ttft", "tpot", "e2e"):
                for stat in ("mean", "p50", "p90", "p99"):
                    key_m = f"{name}_ms_{stat}"
                    if key_m in m and float(m[key_m]) > 0:
                        out[key_m] = float(m[key_m])
            for name, pct, _ in probe.limits:
                out[f"{name}_ms_p{pct:g}"] = run.percentile_ms(name, pct)
            if len(_ANSWERS) > 256:
                _ANSWERS.clear()
            _ANSWERS[key] = out
        return _ANSWERS[key]
    return Plan(q, chip, evaluate)


__all__ = ["Probe", "highest_rate", "plan_capacity", "tuned_batch"]
