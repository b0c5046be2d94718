"""Tier 1 over one chip: every deployment of every class, priced, the best kept per speed tier.

Each traffic class gets its own replica pool (its own endpoint), so a long RAG prompt never blocks a
chat prompt and a deployment is chosen per class. A chip's cost is the sum of the pools' fleets plus,
for a custom design, its NRE annualised like the hardware: $/Mtok = all of it / all output tokens.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenfab.constants import Draws
from tokenfab.deployment import Deployment, DeploymentError, design_layout, kv_capacity_tokens, layout_dict
from tokenfab.economics import HOURS_PER_YEAR, annuity, hourly_cost
from tokenfab.network import NetworkShare, chip_network
from tokenfab.search.chips import Candidate, fixed_per_hour
from tokenfab.search.fluid import INFEASIBLE, Mix, screen_layout
from tokenfab.search.problem import ClassStats, DesignProblem
from tokenfab.serve.simulate import kv_transfer_time

# Extra per-user speed floors (output tokens/s per user) that trace the Pareto front's speed axis.
SPEED_TIERS = (0.0, 40.0, 60.0, 100.0, 150.0)
# Order in which an infeasible class's checks bind (later = the search got further).
_REASON_RANK = {1: 0, 4: 1, 2: 2, 3: 3}


@dataclass
class ClassPoints:
    """All screened deployments of one class on one chip (flat arrays, one entry per point)."""

    cls: ClassStats
    dep: list[dict[str, Any]]          # per layout
    layout: np.ndarray                 # point -> layout index
    batch_limit: np.ndarray
    chunk: np.ndarray
    pd: np.ndarray
    tps: np.ndarray                    # output tokens/s per replica unit
    devices: np.ndarray
    tpot: np.ndarray
    ttft: np.ndarray
    power: np.ndarray
    batch: np.ndarray
    ratio: np.ndarray
    reason: np.ndarray
    usd_h: np.ndarray                  # fleet $/h for the class's demand (inf where infeasible)
    chips: np.ndarray
    capex: np.ndarray


def layouts(problem: DesignProblem, model_id: str, cand: Candidate) -> list[Deployment]:
    """TP x PP x precisions that can run the model on the chip (divisibility, memory, precision units)."""
    model = problem.models[model_id]
    chip = cand.chip
    assert chip is not None
    out = []
    optional = problem.raw["deployment"]
    grid = itertools.product(problem.dep_values("tp"), problem.dep_values("pp"), optional.get("ep", [1]),
                             optional.get("mtp", [0]), problem.dep_values("weight_precision"),
                             problem.dep_values("kv_precision"))
    for tp, pp, ep, mtp, wp, kvp in grid:
        if (int(ep) > 1 and not model.is_moe) or (int(mtp) and not model.mtp_layers):
            continue
        dep = design_layout(model, int(tp), int(pp), int(ep), wp, kvp, int(mtp))
        try:
            dep.check(model, chip)
        except (DeploymentError, ValueError):
            continue
        if kv_capacity_tokens(model, chip, dep) < 4096:
            continue
        out.append(dep)
    return out


def class_points(problem: DesignProblem, cand: Candidate, cls: ClassStats, demand_tps: float) -> ClassPoints:
    """Screen every deployment of one class on the chip and price each at the class's demand."""
    chip, params = cand.chip, cand.params
    assert chip is not None and params is not None
    model = problem.models[cls.model]
    mix = Mix.of([cls])
    bl = np.array(problem.dep_values("max_batch"), dtype=float)
    ch = np.array(problem.dep_values("chunk_tokens"), dtype=float)
    pd_modes = [bool(v) for v in problem.dep_values("disaggregated")]
    deps = layouts(problem, cls.model, cand)
    fields: dict[str, list[np.ndarray]] = {k: [] for k in (
        "layout", "batch_limit", "chunk", "pd", "tps", "devices", "tpot", "ttft", "power", "batch", "ratio", "reason")}
    grid_b, grid_c, grid_p = np.meshgrid(bl, ch, np.array([0, 1]), indexing="ij")
    keep = np.isin(grid_p, [int(m) for m in pd_modes]).ravel()
    for i, dep in enumerate(deps):
        transfer = kv_transfer_time(model, chip, dep, params)(cls.isl_p99)
        res = screen_layout(model, chip, dep, params, mix, bl, ch, kv_transfer_s=transfer)
        n = int(keep.sum())
        fields["layout"].append(np.full(n, i))
        fields["batch_limit"].append(grid_b.ravel()[keep])
        fields["chunk"].append(grid_c.ravel()[keep])
        fields["pd"].append(grid_p.ravel()[keep])
        for name, arr in (("tps", res.tokens_per_s), ("devices", res.devices), ("tpot", res.tpot),
                          ("ttft", res.ttft), ("power", res.power), ("batch", res.batch), ("ratio", res.pd_ratio),
                          ("reason", res.reason)):
            fields[name].append(arr.ravel()[keep])
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in fields.items()}
    usd_h, chips, capex = fleet_cost(cand, cat["tps"], cat["devices"], cat["power"], demand_tps, problem.utilisation)
    return ClassPoints(cls, [_dep_dict(d) for d in deps], cat["layout"].astype(int), cat["batch_limit"], cat["chunk"],
                       cat["pd"].astype(bool), cat["tps"], cat["devices"], cat["tpot"], cat["ttft"], cat["power"],
                       cat["batch"], cat["ratio"], cat["reason"].astype(int), usd_h, chips, capex)


def _dep_dict(dep: Deployment) -> dict[str, Any]:
    return layout_dict(dep)


def network_share(cand: Candidate, d: Draws, chips: Any) -> NetworkShare:
    """The candidate's network share per chip in a fleet of `chips` (network.chip_network): a design's scale-up
    fabric from its axes (links x lane rate into a domain) and its scale-out NIC speed, so more links, larger domains
    and faster NICs cost what their switches, optics and power cost; the scale-out fat tree sized to the fleet."""
    return chip_network(cand.chip, d, np.maximum(chips, 1.0), design=cand.design if cand.custom else None)


def fleet_cost(cand: Candidate, tps: np.ndarray, devices: np.ndarray, power: np.ndarray, demand_tps: float,
               utilisation: float, d: Draws | None = None, unit_usd: Any = None) -> tuple[np.ndarray, ...]:
    """$/h of the fleet serving `demand_tps` output tokens/s, its chips and purchase cost (inf if infeasible); each
    chip carries its network share in a cluster the size of this fleet."""
    d = d or Draws()
    ok = tps > 0
    safe = np.where(ok, tps, 1.0)
    units = np.ceil(demand_tps / (utilisation * safe))
    chips = np.ceil(units * devices)
    busy = np.where(ok, power / np.maximum(devices, 1.0), 0.0)
    price = cand.unit_usd if unit_usd is None else unit_usd
    hr = hourly_cost(price, cand.tdp_w, np.minimum(busy, cand.tdp_w), d, utilisation, cand.included,
                     network_share(cand, d, np.where(ok, chips, 1.0))).total
    usd_h = np.where(ok, chips * hr, np.inf)
    return usd_h, np.where(ok, chips, 0.0), np.where(ok, chips * price, np.inf)


def nre_per_hour(nre_usd: Any, d: Draws | None = None) -> Any:
    """The design's NRE, annualised over the hardware life at the cost of capital, per hour."""
    d = d or Draws()
    return nre_usd * annuity(d("cost_of_capital"), d("depreciation_years")) / HOURS_PER_YEAR


def binding(points: list[ClassPoints]) -> str | None:
    """The constraint that rules the chip out: the first class with no feasible deployment, and why."""
    for cp in points:
        if not (cp.reason == 0).any():
            if cp.reason.size == 0:
                return f"model {cp.cls.model}: no layout fits this chip's memory and precisions"
            codes = [c for c in np.unique(cp.reason) if c in _REASON_RANK]
            worst = max(codes, key=lambda c: _REASON_RANK[c])
            what = {1: "KV cache (model does not leave room)", 2: f"TPOT SLO {cp.cls.tpot_s * 1e3:g} ms",
                    3: f"TTFT SLO {cp.cls.ttft_s * 1e3:g} ms", 4: "prefill chunk budget"}[int(worst)]
            return f"class {cp.cls.name} ({cp.cls.model}): {what} met by no deployment ({INFEASIBLE[worst]})"
    return None


def evaluate(problem: DesignProblem, cand: Candidate) -> dict[str, Any]:
    """One stored row: the chip, its best deployment per class per speed tier, $/Mtok, speed, tokens/J."""
    row: dict[str, Any] = {"key": cand.key, "label": cand.label, "custom": cand.custom, "unit_usd": cand.unit_usd,
                           "nre_usd": cand.nre_usd, "tdp_w": cand.tdp_w, "axes": cand.axes or None,
                           "mfg_usd": cand.mfg_usd, "run_usd_per_year": cand.run_usd_h * HOURS_PER_YEAR,
                           "maturity": cand.maturity, "family": cand.family, "availability": cand.availability,
                           "available": cand.available, "buyable": cand.buyable}
    empty = {"feasible": False, "usd_per_mtok": None, "user_tps": None, "tokens_per_j": None, "screened": 0,
             "tiers": [], "classes": []}
    if cand.infeasible or cand.chip is None:
        return {**row, **empty, "reason": cand.infeasible}
    demand = _class_demand(problem)
    points = [class_points(problem, cand, c, demand[c.name]) for c in problem.classes]
    row["screened"] = int(sum(cp.tps.size for cp in points))
    reason = binding(points)
    if reason:
        return {**row, **empty, "screened": row["screened"], "reason": reason}
    total_tps = sum(demand.values())
    nre_h = fixed_per_hour(cand)
    tiers = []
    for floor in SPEED_TIERS:
        picks = []
        for cp in points:
            ok = (cp.reason == 0) & (1.0 / np.where(cp.reason == 0, cp.tpot, np.inf) >= floor)
            if not ok.any():
                break
            i = int(np.argmin(np.where(ok, cp.usd_h, np.inf)))
            picks.append(_pick(cp, i, demand[cp.cls.name]))
        if len(picks) < len(points):
            continue
        usd_h = sum(p["usd_h"] for p in picks) + nre_h
        tiers.append({
            "floor": floor,
            "usd_per_mtok": usd_h / (total_tps * 3600.0) * 1e6,
            "user_tps": sum(p["demand_tps"] / p["tpot_s"] for p in picks) / total_tps,
            "tokens_per_j": total_tps / max(sum(p["power_w"] for p in picks), 1e-9),
            "chips": sum(p["chips"] for p in picks),
            "capex_usd": sum(p["capex_usd"] for p in picks) + cand.nre_usd,
            "classes": picks,
        })
    best = tiers[0]
    budget = problem.constraints.get("budget_usd")
    if budget and best["capex_usd"] > budget:
        return {**row, **empty, "screened": row["screened"],
                "reason": f"constraints.budget_usd: fleet capex ${best['capex_usd']:,.0f} exceeds ${budget:,.0f}"}
    return {**row, "feasible": True, "reason": None, "usd_per_mtok": best["usd_per_mtok"], "user_tps": best["user_tps"],
            "tokens_per_j": best["tokens_per_j"], "chips": best["chips"], "capex_usd": best["capex_usd"],
            "tiers": tiers, "classes": best["classes"]}


def _class_demand(problem: DesignProblem) -> dict[str, float]:
    weights = {c.name: c.share * c.osl_mean for c in problem.classes}
    total = sum(weights.values())
    return {k: problem.demand / 86400.0 * w / total for k, w in weights.items()}


def _pick(cp: ClassPoints, i: int, demand_tps: float) -> dict[str, Any]:
    """One chosen deployment of a class, as plain numbers (what the store and the report keep)."""
    fleet_power = float(cp.power[i] * np.ceil(demand_tps / cp.tps[i]))  # replica units busy at the demand
    return {"class": cp.cls.name, "model": cp.cls.model, **cp.dep[int(cp.layout[i])],
            "max_batch": int(cp.batch_limit[i]), "chunk_tokens": int(cp.chunk[i]), "disaggregated": bool(cp.pd[i]),
            "pd_ratio": float(cp.ratio[i]), "batch": float(cp.batch[i]), "tps_per_replica": float(cp.tps[i]),
            "devices": float(cp.devices[i]), "tpot_s": float(cp.tpot[i]), "ttft_tail_s": float(cp.ttft[i]),
            "power_w": fleet_power, "replica_power_w": float(cp.power[i]), "demand_tps": demand_tps,
            "usd_h": float(cp.usd_h[i]), "chips": float(cp.chips[i]), "capex_usd": float(cp.capex[i])}
