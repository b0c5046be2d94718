"""SLO capacity: the highest request rate at which one replica still meets a class's latency objective.

Fleet planning and design search both need "how much of this traffic can one chip carry and stay within
its SLO" — a figure a roofline cannot give, because it is set by queueing, batching and the long tail of
prompt lengths. It is found here by bisection over the arrival rate, each probe a seeded run of the
serving simulator (`serve.simulate.simulate`) on the same request sample with its arrival times rescaled,
so probes differ only in load and the answer is deterministic. Probes stay cheap: a few thousand
requests, a quarter-length pre-run that stops a probe as soon as it already blows the SLO, a warm start
from a rate hint, and an in-process plus optional on-disk cache keyed by every input.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tokenfab.deployment import Deployment, DeploymentError, kv_capacity_tokens
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.params import EffParams, shipped_calibration
from tokenfab.serve.cluster import Pools
from tokenfab.serve.engine import BLOCK_TOKENS
from tokenfab.serve.simulate import ClassInfo, simulate
from tokenfab.workload import Gamma, Poisson, RequestClass, RequestTable, Workload

CACHE_VERSION = 2            # bump when the simulator's answers change, so stale disk entries are ignored
MIN_RATE = 1e-4              # sessions/s; a replica that misses the SLO even here has no SLO capacity
MAX_RATE = 1e5
_STEP = 4.0                  # bracketing factor
_MEMO: dict[str, Capacity] = {}
R = TypeVar("R")


@dataclass(frozen=True)
class Capacity:
    """What one replica of (model, chip, deployment) sustains for one class within its SLO.

    Rates count sessions (= requests for single-turn classes); token rates are per chip (the replica's
    rate divided by its devices). Latencies are the class's percentile at `rate_per_replica`."""

    rate_per_replica: float
    output_tokens_per_s_per_chip: float
    input_tokens_per_s_per_chip: float
    ttft_p: float                 # seconds, at the class percentile
    tpot_p: float
    percentile: float
    devices: int
    power_w_per_chip: float       # mean accelerator power at that load (step-cost energy model)
    probes: int                   # simulator runs it took (0 when served from a cache)
    feasible: bool                # False: the SLO is missed even at MIN_RATE (capacity 0)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def log_bisect(probe: Callable[[float], tuple[bool, R]], lo: float, hi: float, rel_tol: float,
               best: R | None = None, max_calls: int | None = None) -> tuple[float, R | None, int]:
    """Narrow a bracket (`lo` passes, `hi` fails) by probing its geometric midpoint until hi / lo <= 1 + rel_tol
    (or `max_calls` probes). Returns the highest passing rate, the probe's result there (`best` if none passed
    inside the bracket) and the probes it took. An open bracket (lo 0 or hi infinite) is returned as it is."""
    calls = 0
    while (lo > 0.0 and math.isfinite(hi) and hi / lo > 1.0 + rel_tol
           and (max_calls is None or calls < max_calls)):
        mid = math.sqrt(lo * hi)
        ok, result = probe(mid)
        calls += 1
        if ok:
            lo, best = mid, result
        else:
            hi = mid
    return lo, best, calls


def _key(*parts: Any) -> str:
    text = json.dumps([CACHE_VERSION, *[repr(p) for p in parts]])
    return hashlib.sha256(text.encode()).hexdigest()


def _sample(request_class: RequestClass, requests: int, seed: int, arrival_cv: float) -> RequestTable:
    """The class's requests at 1 session/s; arrival times scale as 1/rate (Poisson and gamma gaps do)."""
    arrival = Poisson(1.0) if arrival_cv == 1.0 else Gamma(1.0, arrival_cv)
    return Workload((request_class,), arrival).requests(requests, seed)


def _at_rate(table: RequestTable, rate: float, n: int | None = None) -> RequestTable:
    t = table if n is None else table[:n]
    return replace(t, arrival=t.arrival / rate)


def _cut(table: RequestTable, n: int) -> int:
    """A prefix length of about `n` rows that ends at a session boundary."""
    starts = np.flatnonzero(table.turn == 0)
    later = starts[starts >= n]
    return int(later[0]) if len(later) else len(table)


class _Prober:
    """Runs the simulator at a rate and says whether the class's SLO held (with the run's figures)."""

    def __init__(self, model: ModelSpec, chip: Chip, dep: Deployment, info: ClassInfo, table: RequestTable,
                 params: EffParams) -> None:
        self.model, self.chip, self.dep, self.info, self.table, self.params = model, chip, dep, info, table, params
        self.pre = _cut(table, len(table) // 4) if len(table) >= 800 else 0
        self.runs = 0

    def _run(self, rate: float, n: int | None) -> tuple[bool, dict[str, Any]]:
        self.runs += 1
        res = simulate(self.model, self.chip, self.dep, [_at_rate(self.table, rate, n)], [self.info],
                       Pools(replicas=1), self.params)
        m = res.metrics
        cls = m["classes"].get(self.info.name)
        served = m["requests"]
        # requests the replica can never hold count as misses against the percentile's allowance
        allowance = (100.0 - self.info.percentile) / 100.0 * (served + m["rejected"])
        ok = bool(cls and cls["slo_attained"]) and m["rejected"] <= allowance
        return ok, m

    def __call__(self, rate: float) -> tuple[bool, dict[str, Any] | None]:
        if self.pre and self.pre < len(self.table):
            ok, m = self._run(rate, self.pre)
            if not ok:       # already over the SLO on the first quarter: a longer run only queues more
                return False, None
        return self._run(rate, None)


def slo_capacity(model: ModelSpec, chip: Chip, dep: Deployment, request_class: RequestClass, *,
                 params: EffParams | None = None, requests: int = 3000, seed: int = 0, arrival_cv: float = 1.0,
                 rel_tol: float = 0.03, rate_hint: float | None = None,
                 cache_dir: str | Path | None = None) -> Capacity:
    """Highest session rate per replica (and tokens/s per chip) at which `request_class` meets its SLO.

    Bisection (in log rate, to `rel_tol`) over seeded simulator runs of `requests` requests, Poisson
    arrivals (or gamma with `arrival_cv`). `rate_hint` starts the bracket near a known answer. Results are
    memoised in-process and, with `cache_dir`, on disk (one JSON per input set). A class without an SLO is
    rejected: its capacity is just the offline throughput, which `compare` gives."""
    if request_class.slo is None:
        raise ValueError(f"class {request_class.name!r} has no SLO: slo_capacity needs ttft_s and/or tpot_s")
    if requests < 50:
        raise ValueError(f"requests = {requests}: at least 50 are needed to read a percentile")
    params = params or shipped_calibration().for_chip(chip)
    key = _key(model, chip, dep, request_class, params, requests, seed, arrival_cv, rel_tol)
    hit = _MEMO.get(key) or _disk_get(cache_dir, key)
    if hit is not None:
        _MEMO[key] = hit
        return hit
    cap = _search(model, chip, dep, request_class, params, requests, seed, arrival_cv, rel_tol, rate_hint)
    _MEMO[key] = cap
    _disk_put(cache_dir, key, cap)
    return cap


def _search(model: ModelSpec, chip: Chip, dep: Deployment, rc: RequestClass, params: EffParams, requests: int,
            seed: int, arrival_cv: float, rel_tol: float, rate_hint: float | None) -> Capacity:
    slo = rc.slo
    assert slo is not None
    info = ClassInfo(rc.name, slo.ttft_s, slo.tpot_s, slo.percentile)
    none = Capacity(0.0, 0.0, 0.0, math.inf, math.inf, slo.percentile, dep.devices, 0.0, 0, False)
    try:
        dep.check(model, chip)
    except (DeploymentError, ValueError) as err:
        return _replace(none, reason=str(err))
    if kv_capacity_tokens(model, chip, dep) < BLOCK_TOKENS:
        return _replace(none, reason=f"{model.name} leaves no KV cache on {dep.devices} x {chip.id}")
    table = _sample(rc, requests, seed, arrival_cv)
    probe = _Prober(model, chip, dep, info, table, params)
    lo, hi = 0.0, math.inf
    best: dict[str, Any] | None = None
    rate = min(max(rate_hint or 1.0, MIN_RATE), MAX_RATE)
    while hi == math.inf or lo == 0.0:            # bracket: lo meets the SLO, hi misses it
        ok, m = probe(rate)
        if ok:
            lo, best = rate, m
            if hi != math.inf or rate >= MAX_RATE:
                break
            rate = min(rate * _STEP, MAX_RATE)
        else:
            hi = rate
            if lo > 0.0 or rate <= MIN_RATE:
                break
            rate = max(rate / _STEP, MIN_RATE)
    if best is None:
        return _replace(none, probes=probe.runs, reason=f"misses the SLO even at {MIN_RATE:g} sessions/s")
    lo, best, _ = log_bisect(probe, lo, hi, rel_tol, best)
    assert best is not None
    sessions = max(int((table.turn == 0).sum()), 1)
    out_per_session = float(table.output_len.sum()) / sessions
    in_per_session = float(table.input_len.sum()) / sessions
    cls = best["classes"][rc.name]
    p = slo.percentile
    ttft = cls.get(f"ttft_p{p:g}_ms", cls["ttft_ms"].get("p99", math.nan)) / 1e3
    tpot = cls.get(f"tpot_p{p:g}_ms", cls["tpot_ms"].get("p99", math.nan)) / 1e3
    devices = dep.devices
    return Capacity(lo, lo * out_per_session / devices, lo * in_per_session / devices, float(ttft), float(tpot), p,
                    devices, float(best["avg_power_w"]) / devices, probe.runs, True)


def _replace(cap: Capacity, **changes: Any) -> Capacity:
    from dataclasses import replace
    return replace(cap, **changes)


def deployment_candidates(model: ModelSpec, chip: Chip, precisions: Sequence[str] = ("fp8", "bf16"),
                          tps: Sequence[int] = (1, 2, 4, 8), engine: str = "trtllm") -> list[Deployment]:
    """Layouts worth trying: each TP within the scale-up domain and each precision the chip computes in,
    keeping those whose weights leave room for KV cache (fp4 keeps an fp8 KV cache)."""
    out = []
    for precision in precisions:
        if not chip.supports(precision):
            continue
        kv = "fp8" if precision == "fp4" else precision
        for tp in tps:
            if tp > max(chip.scaleup_domain, 1) and tp > 1:
                continue
            dep = Deployment(tp=tp, weight_precision=precision, act_precision=precision, kv_precision=kv,
                             engine=engine)
            try:
                dep.check(model, chip)
            except (DeploymentError, ValueError):
                continue
            if kv_capacity_tokens(model, chip, dep) >= 16 * BLOCK_TOKENS:
                out.append(dep)
    return out


def best_deployment(model: ModelSpec, chip: Chip, request_class: RequestClass, *,
                    candidates: Sequence[Deployment] | None = None, **kwargs: Any) -> tuple[Deployment, Capacity]:
    """The candidate layout with the most SLO output tokens/s per chip, and its capacity.

    A candidate is first probed at the rate that would tie the best so far; if that misses the SLO it
    cannot win and is dropped after one (short) probe. Returns the last candidate with a zero capacity
    when none meets the SLO (its `reason` says why); raises ValueError when there is no candidate."""
    cands = list(candidates) if candidates is not None else deployment_candidates(model, chip)
    if not cands:
        raise ValueError(f"model {model.name} does not fit on {chip.id} at any candidate layout")
    best: tuple[Deployment, Capacity] | None = None
    last: tuple[Deployment, Capacity] | None = None
    for dep in cands:
        hint = None
        if best is not None:
            hint = best[1].rate_per_replica * dep.devices / best[1].devices   # ties the incumbent per chip
            if not _cached(model, chip, dep, request_class, kwargs) and not _meets(model, chip, dep, request_class,
                                                                                   hint, kwargs):
                continue
        cap = slo_capacity(model, chip, dep, request_class, rate_hint=hint, **kwargs)
        last = (dep, cap)
        if cap.feasible and (best is None or cap.output_tokens_per_s_per_chip > best[1].output_tokens_per_s_per_chip):
            best = (dep, cap)
    result = best or last
    assert result is not None
    return result


def _params(chip: Chip, kwargs: dict[str, Any]) -> EffParams:
    return kwargs.get("params") or shipped_calibration().for_chip(chip)


def _cached(model: ModelSpec, chip: Chip, dep: Deployment, rc: RequestClass, kwargs: dict[str, Any]) -> bool:
    key = _key(model, chip, dep, rc, _params(chip, kwargs), kwargs.get("requests", 3000), kwargs.get("seed", 0),
               kwargs.get("arrival_cv", 1.0), kwargs.get("rel_tol", 0.03))
    return key in _MEMO or _disk_get(kwargs.get("cache_dir"), key) is not None


def _meets(model: ModelSpec, chip: Chip, dep: Deployment, rc: RequestClass, rate: float,
           kwargs: dict[str, Any]) -> bool:
    """Whether `dep` meets the class's SLO at `rate` (one probe)."""
    slo = rc.slo
    assert slo is not None
    table = _sample(rc, kwargs.get("requests", 3000), kwargs.get("seed", 0), kwargs.get("arrival_cv", 1.0))
    info = ClassInfo(rc.name, slo.ttft_s, slo.tpot_s, slo.percentile)
    ok, _ = _Prober(model, chip, dep, info, table, _params(chip, kwargs))(rate)
    return ok


def _disk_get(cache_dir: str | Path | None, key: str) -> Capacity | None:
    if cache_dir is None:
        return None
    path = Path(cache_dir) / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        return Capacity(**{k: (math.inf if v is None else v) for k, v in data.items()})
    except (OSError, ValueError, TypeError):
        return None


def _disk_put(cache_dir: str | Path | None, key: str, cap: Capacity) -> None:
    if cache_dir is None:
        return
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in cap.to_json().items()}
    fd, tmp = tempfile.mkstemp(suffix=".part", dir=folder)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, folder / f"{key}.json")


def clear_memo() -> None:
    """Forget in-process results (tests; or after changing the calibration file in place)."""
    _MEMO.clear()


__all__ = ["Capacity", "best_deployment", "clear_memo", "deployment_candidates", "slo_capacity"]
