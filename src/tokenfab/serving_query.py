"""Serving queries (`server`, `concurrency`) through the simulator: how many requests a run sends, their
lengths and arrivals, and the metrics a run answers with.
"""

from __future__ import annotations

import math
import re

import numpy as np

from tokenfab import catalog
from tokenfab.deployment import Deployment
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.params import EffParams
from tokenfab.queries import Query
from tokenfab.query_hints import read_hints
from tokenfab.query_plan import MLPERF_DATASETS, Plan, QueryError
from tokenfab.serve.cluster import Pools
from tokenfab.serve.lengths import dataset_lengths
from tokenfab.serve.simulate import ClassInfo, simulate
from tokenfab.workload import RequestTable

# Requests simulated for a serving query whose source does not say how many it sent.
SERVING_REQUESTS = 3000
SERVING_SEED = 0
# Request lifetimes the arrivals of a server query span, with a generous time per output token for the guess.
STEADY_LIFETIMES = 4.0
TOKEN_TIME_GUESS_S = 0.05
# MLPerf Server runs last at least 600 s, so their percentiles are steady-state figures; the simulation
# sends as many requests as the achieved rate delivers in that time.
# https://github.com/mlcommons/inference_policies/blob/master/inference_rules.adoc (min_duration)
MLPERF_MIN_DURATION_S = 600.0
# Near the highest passing load the batch a server carries keeps drifting up for minutes, so a shorter
# window reads low latencies (H200 x8 at 100 req/s: TPOT 84 ms after 20,000 requests, 103 ms after 600 s).
# The cap only bounds memory and time: 250,000 requests take about 5 s.
MAX_SERVING_REQUESTS = 250_000
# a server run whose later half completes under this share of its arrival rate is saturated; its latencies
# are then given at AT_CAPACITY x the rate it completes
SATURATED_SHARE = 0.95
AT_CAPACITY = 0.97
WAITS = ("ttft_", "queue_", "e2e_")
_SIMULATIONS: dict[tuple, dict[str, float]] = {}   # identical serving queries (other metric) share one run
# what a serving answer reports: rates, latencies (ms) and energy
_SERVING_SUFFIXES = ("_per_s", "_mean", "_p50", "_p90", "_p99", "_w", "_token", "_batch")


def plan_serving(q: Query, model: ModelSpec, chip: Chip, dep: Deployment, replicas: int, isl: float,
                 osl: float) -> Plan:
    """`server` (Poisson at `rate` for the whole system) and `concurrency` (closed loop) through the simulator."""
    if q.scenario == "server" and not q.rate:
        raise QueryError("field 'rate' is required for scenario 'server' (requests/s, > 0)")
    if q.scenario == "concurrency" and not q.concurrency:
        raise QueryError("field 'concurrency' is required for scenario 'concurrency' (requests in flight, >= 1)")
    match = REQUESTS_NOTE.search(q.note or "")
    fixed_n = int(match.group(1).replace(",", "")) if match else None
    if fixed_n is not None:
        n = fixed_n
    elif q.scenario == "server":
        n = server_run_requests(q, float(q.rate or 0.0), osl)
    else:
        n = SERVING_REQUESTS
    pools = serving_pools(q, replicas)
    config = serving_run_key(q)
    cap = client_cap(q)

    def metrics(m: dict[str, float], mean_in: float, mean_out: float) -> dict[str, float]:
        out = {k: float(v) for k, v in m.items() if k.endswith(_SERVING_SUFFIXES) and float(v) > 0}
        if q.scenario == "server":   # the rate once the batch has filled: a long benchmark's, ramp left out
            out["output_tokens_per_s"] = out["late_output_tokens_per_s"]
        out["requests_per_s"] = out["output_tokens_per_s"] / mean_out
        out["output_tokens_per_s_per_device"] = out["output_tokens_per_s"] / q.devices
        out["total_tokens_per_s_per_device"] = out["requests_per_s"] * (mean_in + mean_out) / q.devices
        return out

    def run(p: EffParams, count: int) -> tuple[dict[str, float], dict[str, float], RequestTable]:
        inputs, outputs = serving_lengths(q, isl, osl, count)
        table = request_table(q, inputs, outputs)
        mark = float(table.arrival[count // 2]) if q.scenario == "server" else None
        m = simulate(model, chip, dep, [table], [ClassInfo("all")], pools, p, mark_time=mark,
                     client_cap=cap).metrics
        return m, metrics(m, float(inputs.mean()), float(outputs.mean())), table

    def evaluate(p: EffParams) -> dict[str, float]:
        key = (config, n, repr(p))
        if key not in _SIMULATIONS:
            count = n
            m, out, table = run(p, count)
            if q.scenario == "server" and fixed_n is None:
                # the batch fills over one request lifetime; a run shorter than a few of them reads the
                # ramp, not the steady state (and looks saturated): rerun it long enough
                need = steady_run_requests(float(q.rate or 0.0), float(table.output_len.mean()), out)
                if need > count:
                    count = need
                    m, out, table = run(p, count)
            # more arrivals than the system completes: its queue grows with the run's length, and so do the
            # waits (TTFT, queueing, end to end); throughput and TPOT are those of the full batch, whatever the
            # length. The answer is flagged, with the capacity beside it and the waits of a run at capacity.
            mean_out = float(table.output_len.mean())
            capacity = float(m["late_output_tokens_per_s"]) / mean_out
            if q.scenario == "server" and capacity < SATURATED_SHARE * float(q.rate or 0.0):
                at = capacity * AT_CAPACITY
                stable = RequestTable.single_turn(table.arrival * (float(q.rate or 0.0) / at), table.input_len,
                                                  table.output_len)
                waits = metrics(simulate(model, chip, dep, [stable], [ClassInfo("all")], pools, p,
                                         client_cap=cap).metrics,
                                float(table.input_len.mean()), mean_out)
                out.update({k: v for k, v in waits.items() if k.startswith(WAITS)})
                out["saturated"] = 1.0
                out["capacity_requests_per_s"] = capacity
            if len(_SIMULATIONS) > 256:
                _SIMULATIONS.clear()
            _SIMULATIONS[key] = out
        return _SIMULATIONS[key]
    return Plan(q, chip, evaluate)


def server_run_requests(q: Query, rate: float, osl: float) -> int:
    """Requests a Poisson run at `rate` sends: an MLPerf run's 600 s of arrivals; otherwise enough to outlast a
    few request lifetimes, or the run ends before the batch reaches its steady size (140 req/s of 512-token
    decodes at ~0.1 s a token live ~50 s each)."""
    if q.engine.startswith("mlperf"):
        return max(min(int(rate * MLPERF_MIN_DURATION_S), MAX_SERVING_REQUESTS), 1)
    return min(max(SERVING_REQUESTS, int(rate * STEADY_LIFETIMES * osl * TOKEN_TIME_GUESS_S)), MAX_SERVING_REQUESTS)


def steady_run_requests(rate: float, mean_out: float, out: dict[str, float]) -> int:
    """Requests a Poisson run at `rate` needs to span STEADY_LIFETIMES decode lifetimes (output tokens x the
    time per output token a first run found), within MAX_SERVING_REQUESTS."""
    lifetime_s = mean_out * out.get("tpot_ms_mean", 0.0) / 1e3
    return min(int(math.ceil(rate * STEADY_LIFETIMES * lifetime_s)), MAX_SERVING_REQUESTS)


def client_cap(q: Query) -> int | None:
    """Requests the benchmark client keeps in flight at most (vLLM's `bench serve --max-concurrency`): a
    server query's `concurrency`, or the cap its note states ("max concurrency 10,800")."""
    if q.scenario != "server":
        return None
    if q.concurrency:
        return q.concurrency
    return read_hints(q.engine, q.note).client_cap


def serving_pools(q: Query, replicas: int) -> Pools:
    """The replicas a serving query runs on: one pool, or the prefill and decode pools a P/D tag names."""
    pd = read_hints(q.engine, q.note).pd
    return Pools(prefill=pd.prefill_replicas, decode=pd.decode_replicas) if pd else Pools(replicas=replicas)


def serving_run_key(q: Query) -> str:
    """What identifies one serving run: the query minus its id, metric and free text, so the queries that
    ask one run for different metrics share it."""
    return repr(sorted(q.model_dump(exclude={"id", "metric", "note", "shape", "batch"}).items()))


def serving_lengths(q: Query, isl: float, osl: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-request lengths: fixed when the query says so, else drawn from the dataset preset's distribution."""
    if q.input_len_exact or q.input_len is not None:
        return np.full(n, int(round(isl))), np.full(n, int(round(osl)))
    name = q.dataset or MLPERF_DATASETS.get(q.model or "")
    preset = catalog.datasets().get(name or "")
    if preset is None:
        return np.full(n, int(round(isl))), np.full(n, int(round(osl)))
    rng = np.random.default_rng(SERVING_SEED)
    return dataset_lengths(preset, rng, n, osl)


def request_table(q: Query, inputs: np.ndarray, outputs: np.ndarray) -> RequestTable:
    n = inputs.size
    rng = np.random.default_rng(SERVING_SEED + 1)
    if q.scenario == "server":
        arrival = np.cumsum(rng.exponential(1.0 / float(q.rate), n))
    else:
        arrival = np.full(n, np.nan)
        arrival[: q.concurrency] = 0.0
    return RequestTable.single_turn(arrival, inputs, outputs)


REQUESTS_NOTE = re.compile(r"(\d[\d,]*) requests")


__all__ = ["MAX_SERVING_REQUESTS", "MLPERF_MIN_DURATION_S", "REQUESTS_NOTE", "SERVING_SEED", "client_cap",
           "plan_serving", "request_table", "server_run_requests", "serving_lengths", "serving_pools",
           "serving_run_key", "steady_run_requests"]
