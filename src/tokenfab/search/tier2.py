"""Tier 2: the serving simulator on the screen's best candidates, and how well the two tiers agree.

Each class's chosen deployment is simulated as its own pool (one replica, or a P/D pair of pools in
the screen's ratio) under Poisson arrivals of that class. A short bisection on the arrival rate, from
the screen's capacity, finds the highest rate at which every SLO still holds; the candidate's $/Mtok
is then recomputed with that capacity. Spearman's rank correlation over the candidates says whether
the screen ranks designs the way the simulator does.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from tokenfab import workload as W
from tokenfab.deployment import design_layout
from tokenfab.search.chips import Candidate, fixed_per_hour
from tokenfab.search.problem import DesignProblem
from tokenfab.search.screen import fleet_cost
from tokenfab.serve.capacity import log_bisect
from tokenfab.serve.cluster import Pools
from tokenfab.serve.simulate import ClassInfo, simulate

SIM_REQUESTS = 1500
REL_TOL = 0.02          # bisection stops when the bracket on the capacity is this tight (relative)
WARMUP = 0.15           # share of requests (the first) that fill the empty system and are not scored
LIFETIMES = 8.0         # the arrival window spans at least this many length-biased request lifetimes
MAX_REQUESTS = 8000


def _class_workload(problem: DesignProblem, name: str) -> tuple[W.Workload, ClassInfo]:
    rc = next(c for c in problem.workload.classes if c.name == name)
    slo = rc.slo
    assert slo is not None
    return W.Workload((rc,), W.Poisson(1.0)), ClassInfo(rc.name, slo.ttft_s, slo.tpot_s, slo.percentile)


def _scored(table: W.RequestTable) -> W.RequestTable:
    """The first WARMUP of the requests relabelled as an unscored class: they meet an empty system (and a
    short run would read their easy latencies as capacity)."""
    cls = table.class_id.copy()
    cls[: int(len(table) * WARMUP)] = 1
    return replace(table, class_id=cls)


def class_capacity(problem: DesignProblem, cand: Candidate, pick: dict[str, Any], seed: int = 0,
                   requests: int = SIM_REQUESTS) -> dict[str, Any]:
    """Highest per-replica-unit output tokens/s at which the class meets its SLO in simulation.

    Every probe replays one seeded request sample with its arrival times rescaled (common random numbers:
    probes and designs differ only in load and hardware, not in the draw), long enough to cover several
    request lifetimes, its warm-up unscored; log-bisection on the load to REL_TOL."""
    assert cand.chip is not None
    model = problem.models[pick["model"]]
    dep = design_layout(model, pick["tp"], pick["pp"], pick.get("ep", 1), pick["weight_precision"],
                        pick["kv_precision"], pick.get("mtp", 0), max_batch=pick["max_batch"],
                        max_num_tokens=pick["chunk_tokens"])
    wl, info = _class_workload(problem, pick["class"])
    stats = next(c for c in problem.classes if c.name == pick["class"])
    osl = stats.osl_mean
    if pick["disaggregated"]:
        decode = 2
        prefill = max(1, math.ceil(decode * pick["pd_ratio"] - 1e-9))
        pools, units = Pools(prefill=prefill, decode=decode), decode
        unit_devices = (prefill + decode) * dep.devices / decode
    else:
        pools, units, unit_devices = Pools(replicas=1), 1, float(dep.devices)
    base_rate = pick["tps_per_replica"] * units / osl      # requests/s at the screen's capacity
    lifetime = 2.0 * max(stats.osl_sq_mean, osl * osl) / (2.0 * osl) * pick["tpot_s"]
    n = int(min(max(requests, math.ceil(LIFETIMES * lifetime * base_rate / (1.0 - WARMUP))), MAX_REQUESTS))
    table = _scored(wl.requests(n, seed))                  # at 1 request/s; rescaled per probe
    unscored = ClassInfo("warm-up")

    def attained(f: float) -> bool:
        probe = replace(table, arrival=table.arrival / (base_rate * f))
        m = simulate(model, cand.chip, dep, [probe], [info, unscored], pools, cand.params).metrics
        return bool(m["classes"].get(info.name, {}).get("slo_attained", False))

    lo, hi, f = 0.0, math.inf, 1.0
    while hi == math.inf or lo == 0.0:                     # bracket from the screen's figure
        if attained(f):
            lo = f
            if hi != math.inf or f >= 4.0:
                break
            f *= 1.25
        else:
            hi = f
            if lo > 0.0 or f <= 1.0 / 16:
                break
            f /= 1.25
    lo, _, _ = log_bisect(lambda x: (attained(x), None), lo, hi, REL_TOL)
    return {"class": pick["class"], "ratio": lo, "tps_per_replica": pick["tps_per_replica"] * lo,
            "devices": unit_devices, "requests": n}


def simulate_candidate(problem: DesignProblem, cand: Candidate, row: dict[str, Any], seed: int = 0,
                       requests: int = SIM_REQUESTS) -> dict[str, Any]:
    """The candidate's $/Mtok with every class's capacity measured by the simulator."""
    total_tps = sum(p["demand_tps"] for p in row["classes"])
    usd_h = fixed_per_hour(cand)
    caps = []
    for pick in row["classes"]:
        cap = class_capacity(problem, cand, pick, seed, requests)
        caps.append(cap)
        cost, _, _ = fleet_cost(cand, np.array([cap["tps_per_replica"]]), np.array([cap["devices"]]),
                                np.array([pick["replica_power_w"]]), pick["demand_tps"], problem.utilisation)
        usd_h += float(cost[0])
    usd = usd_h / (total_tps * 3600.0) * 1e6 if math.isfinite(usd_h) else None
    return {"key": "sim-" + row["key"], "candidate": row["key"], "label": row["label"], "custom": row["custom"],
            "screen_usd_per_mtok": row["usd_per_mtok"], "sim_usd_per_mtok": usd,
            "capacity_ratio": [c["ratio"] for c in caps], "classes": [c["class"] for c in caps]}


def agreement(screen: list[float], sim: list[float | None]) -> float | None:
    """Spearman rank correlation of screen and simulator $/Mtok (an SLO-failing design ranks last)."""
    if len(screen) < 3:
        return None
    sim_v = [s if s is not None else math.inf for s in sim]
    big = max((v for v in sim_v if math.isfinite(v)), default=1.0) * 10
    rho = spearmanr(screen, [v if math.isfinite(v) else big for v in sim_v]).statistic
    return float(rho) if np.isfinite(rho) else None
