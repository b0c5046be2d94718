"""P10-P90 bands on every predicted metric, from the model's own held-out error.

A prediction is only as sure as the model under it has been on data it was not fitted on. The bands come
from leave-one-hardware-out residuals (each measured row predicted by a refit without its accelerator;
error = predicted / measured - 1), grouped by how the answer is made - the step model alone (`engine`: offline,
static, prefill and the other non-queued scenarios), the serving simulator (`serving`: server, concurrency, where
queueing amplifies a step-time error several times near saturation) and the capacity search (`capacity`) - and
by metric family (throughput, TTFT, TPOT, end-to-end, energy). If a family's P10 and P90 errors are r10 and r90,
the measured value lies in [pred / (1 + r90), pred / (1 + r10)] for 80% of such rows. `benchmarks/error_bands.py`
writes the quantiles (`catalog/data/error_bands.json`) and checks their coverage by nested leave-one-hardware-out:
each accelerator's rows against bands computed without that accelerator's residuals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tokenfab import catalog

SERVING = ("server", "concurrency")
MIN_ROWS = 8          # a family with fewer held-out rows borrows another band
BORROWS = {"capacity": "serving"}
GROUPS = ("engine", "serving", "capacity")
# predicted metrics that are counts or settings, not estimates: no band
NO_BAND = ("capacity_probes", "max_batch", "concurrency", "devices", "kv_capacity_tokens", "requests", "preemptions",
           "rejected")


def group_of(scenario: str) -> str:
    return "serving" if scenario in SERVING else "capacity" if scenario == "capacity" else "engine"


def family_of(metric: str) -> str:
    """The metric family a band is kept for."""
    if metric.startswith("ttft") or metric.startswith("queue"):
        return "ttft"
    if metric.startswith(("tpot", "itl", "step_ms")):
        return "tpot"
    if metric.startswith("e2e"):
        return "e2e"
    if metric.startswith(("joules", "avg_power", "energy")):
        return "energy"
    return "throughput"


def quantiles(rows: Iterable[tuple[str, str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """{group: {family | 'all': {p10, p90, n}}} of (scenario, metric, error) rows."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for scenario, metric, err in rows:
        g = group_of(scenario)
        by[(g, family_of(metric))].append(err)
        by[(g, "all")].append(err)
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (g, fam), errs in by.items():
        p10, p90 = np.percentile(errs, [10, 90])
        out[g][fam] = {"p10": float(p10), "p90": float(p90), "n": len(errs)}
    return dict(out)


def _entry(table: Mapping[str, Any], scenario: str, metric: str) -> Mapping[str, float] | None:
    """The quantiles for a metric: its group's family; else the family in the group whose answers it comes
    from (a capacity answer's latencies are a serving run's); else its group's pooled quantiles."""
    name = group_of(scenario)
    family = family_of(metric)
    for g in (name, BORROWS.get(name)):
        fam = (table.get(g) or {}).get(family) if g else None
        if fam is not None and fam["n"] >= MIN_ROWS:
            return fam
    return (table.get(name) or table.get("engine") or {}).get("all")


def band(table: Mapping[str, Any], scenario: str, metric: str, value: float) -> tuple[float, float] | None:
    """(P10, P90) of the measured value behind a prediction `value`; None without a band for it."""
    e = _entry(table, scenario, metric)
    if e is None or metric in NO_BAND or not value > 0:
        return None
    lo, hi = value / (1.0 + e["p90"]), value / (1.0 + e["p10"])
    return (min(lo, hi), max(lo, hi))


def bands_for(scenario: str, predicted: Mapping[str, float],
              table: Mapping[str, Any] | None = None) -> dict[str, list[float]]:
    """The `band` object of an answer: {metric: [p10, p90]} for every predicted metric that has one."""
    table = catalog.error_bands() if table is None else table
    out = {}
    for metric, value in predicted.items():
        b = band(table, scenario, metric, value)
        if b is not None:
            out[metric] = [float(f"{b[0]:.6g}"), float(f"{b[1]:.6g}")]
    return out


def coverage(rows: list[tuple[str, str, str, float, float]],
             table: Mapping[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """Share of measured values inside their band, by group. Rows: (hardware, scenario, metric, measured,
    predicted). Without `table`, each accelerator's rows are judged by bands computed without that accelerator's
    residuals (nested leave-one-hardware-out); with it, every row by those bands."""
    hit: dict[str, list[bool]] = defaultdict(list)
    for hw in sorted({r[0] for r in rows}):
        held = table if table is not None else quantiles((s, m, p / v - 1.0) for h, s, m, v, p in rows if h != hw)
        for _h, s, m, v, p in (r for r in rows if r[0] == hw):
            b = band(held, s, m, p)
            if b is not None:
                hit[group_of(s)].append(b[0] <= v <= b[1])
    return {g: {"coverage": float(np.mean(h)), "n": len(h)} for g, h in hit.items()}


__all__ = ["GROUPS", "band", "bands_for", "coverage", "family_of", "group_of", "quantiles"]
