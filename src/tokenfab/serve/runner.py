"""Turn a user's serving question (model, hardware, layout, traffic) into one simulation run.

The CLI stays a parser: this module resolves the traffic (a preset, a workload file, a trace, or fixed
lengths), the SLO classes, the replica pools and the deployment, checks each for bad input with one
line naming the option, and calls `simulate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenfab import workload as wl
from tokenfab.deployment import Deployment, DeploymentError
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.params import EffParams
from tokenfab.serve.cluster import ROUTERS, Pools
from tokenfab.serve.simulate import ClassInfo, SimResult, simulate

TRACE_SUFFIXES = (".csv", ".jsonl", ".json")


class RunError(ValueError):
    """Bad simulation input; the message is one line naming the option and what is allowed."""


@dataclass(frozen=True)
class Traffic:
    """What to send: the request stream and the classes whose SLOs the metrics check."""

    chunks: Iterable[wl.RequestTable]
    classes: list[ClassInfo]
    requests: int | None     # None = the whole trace
    source: dict[str, Any] | None = None   # what a dataset file gave (ShareGPT: records, pairs kept, token counting)


def traffic(workload: str | None, input_len: int | None, output_len: int | None, rate: float | None,
            concurrency: int | None, requests: int, seed: int, slo: tuple[float | None, float | None, float | None],
            tokenizer: str | None = None) -> Traffic:
    """Resolve `--workload PRESET|file.yaml|trace|sharegpt.json` or `--input-len/--output-len` into a request
    stream. `tokenizer` counts a ShareGPT file's tokens (default: about 4 characters per token)."""
    if rate is not None and rate <= 0:
        raise RunError(f"--rate = {rate:g}: the arrival rate must be > 0 requests/s")
    if concurrency is not None and concurrency < 1:
        raise RunError(f"--concurrency = {concurrency}: at least 1 request in flight")
    if rate is not None and concurrency is not None:
        raise RunError("give --rate (open loop) or --concurrency (closed loop), not both")
    if requests < 1:
        raise RunError(f"--requests = {requests}: at least 1")
    ttft, tpot, pct = slo
    if (ttft is not None or tpot is not None) and pct is None:
        raise RunError("an SLO needs a percentile: add --slo-percentile (e.g. 99)")
    if pct is not None and not 0 < pct <= 100:
        raise RunError(f"--slo-percentile = {pct:g}: allowed 0 < p <= 100")
    override = ClassInfo("all", ttft, tpot, pct) if pct is not None else None
    from tokenfab import sharegpt
    is_sharegpt = workload is not None and sharegpt.looks_like_sharegpt(workload)
    if tokenizer is not None and not is_sharegpt:
        raise RunError("--tokenizer counts the tokens of a ShareGPT --workload file, and this run has none")
    try:
        if is_sharegpt:
            return _sharegpt_traffic(str(workload), tokenizer, rate, concurrency, requests, seed, override)
        if workload is None:
            if input_len is None or output_len is None:
                raise RunError("give --workload PRESET|FILE, or both --input-len and --output-len")
            if input_len < 1 or output_len < 1:
                raise RunError("--input-len and --output-len must be positive token counts")
            mix = wl.fixed(input_len, output_len, rate=rate, concurrency=concurrency)
        elif Path(workload).suffix.lower() in TRACE_SUFFIXES:
            if rate is not None or concurrency is not None:
                raise RunError("a trace brings its own arrival times: drop --rate/--concurrency")
            return Traffic(wl.iter_trace(workload), [override or ClassInfo("trace")], None)
        elif Path(workload).suffix.lower() in (".yaml", ".yml"):
            mix = wl.load_workload(workload)
            mix = _with_load(mix, rate, concurrency)
        else:
            mix = wl.preset(workload, rate=rate, concurrency=concurrency)
    except wl.WorkloadError as err:
        raise RunError(str(err)) from None
    classes = [_class_info(c) if override is None else ClassInfo(c.name, ttft, tpot, pct) for c in mix.classes]
    return Traffic(mix.chunks(requests, seed), classes, requests)


def _sharegpt_traffic(path: str, tokenizer: str | None, rate: float | None, concurrency: int | None, requests: int,
                      seed: int, override: ClassInfo | None) -> Traffic:
    """`requests` single-turn requests from a ShareGPT file's conversations, Poisson at `rate` or closed loop at
    `concurrency` (the file has no arrival times); one class, "sharegpt", unless an SLO percentile overrides it."""
    from tokenfab import sharegpt
    if rate is None and concurrency is None:
        raise RunError(f"--workload {path}: a ShareGPT file has no arrival times; give --rate R (Poisson requests/s) "
                       "or --concurrency N")
    conversations = sharegpt.read_sharegpt(path, tokenizer)
    arrival = wl.Poisson(rate) if rate is not None else wl.Closed(concurrency or 1)
    return Traffic(conversations.chunks(requests, seed, arrival), [override or ClassInfo("sharegpt")], requests,
                   conversations.summary())


def _with_load(mix: wl.Workload, rate: float | None, concurrency: int | None) -> wl.Workload:
    if rate is not None:
        return mix.with_rate(rate)
    if concurrency is not None:
        return mix.with_arrival(wl.closed(concurrency))
    return mix


def _class_info(c: wl.RequestClass) -> ClassInfo:
    if c.slo is None:
        return ClassInfo(c.name)
    return ClassInfo(c.name, c.slo.ttft_s, c.slo.tpot_s, c.slo.percentile)


def pools(devices: int | None, dep: Deployment, disaggregate: str | None, router: str) -> Pools:
    """Replica pools from `--devices` and `--disaggregate P:D` (each replica is tp x pp chips)."""
    if router not in ROUTERS:
        raise RunError(f"--router = {router!r}: allowed {', '.join(ROUTERS)}")
    per = dep.devices
    if disaggregate:
        try:
            p, d = (int(x) for x in disaggregate.split(":"))
        except ValueError:
            raise RunError(f"--disaggregate = {disaggregate!r}: expected P:D, e.g. 1:3 (replica counts)") from None
        if p < 1 or d < 1:
            raise RunError(f"--disaggregate = {disaggregate!r}: both pools need at least one replica")
        if devices is not None and devices != (p + d) * per:
            raise RunError(f"--devices = {devices}: {p}:{d} replicas of tp x pp = {per} need {(p + d) * per}")
        return Pools(prefill=p, decode=d, router=router)
    devices = devices if devices is not None else per
    if devices < per or devices % per:
        raise RunError(f"--devices = {devices}: must be a positive multiple of tp x pp = {per}")
    return Pools(replicas=devices // per, router=router)


def run(model: ModelSpec, chip: Chip, dep: Deployment, load: Traffic, replica_pools: Pools,
        params: EffParams | None = None, preemption: str = "recompute", prefix_caching: bool = True,
        records: str | None = None, trace_out: str | None = None,
        progress: Callable[[], None] | None = None) -> SimResult:
    """Check the deployment, then simulate (bad layouts and streams raise `RunError`)."""
    try:
        dep.check(model, chip)
        return simulate(model, chip, dep, load.chunks, load.classes, replica_pools, params, preemption,
                        prefix_caching, records, trace_out, progress)
    except (DeploymentError, wl.WorkloadError, ValueError) as err:
        raise RunError(str(err)) from None
