"""Fleet planning end to end: plan file -> SLO capacities -> one optimal plan per scenario -> rows.

`plan_fleet` does all the computing and returns a `FleetResult`; writing (store rows, report) is left to
the caller so that bad input or an infeasible scenario leaves nothing half-written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokenfab.fleet.inputs import (
    CapacityTable,
    ClassDef,
    HardwareDef,
    capacities,
    class_defs,
    compile_plan,
    hardware_defs,
    model_of,
)
from tokenfab.fleet.milp import Infeasible, Solution, solve
from tokenfab.fleet.plan import FleetError, PlanSpec, ScenarioSpec, load_plan
from tokenfab.fleet.scenarios import Bargaining, bargaining_power, select, shocks


@dataclass
class ScenarioResult:
    spec: ScenarioSpec
    solution: Solution | None
    infeasible: str = ""          # why no plan exists under this scenario's shocks (the base case never)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class FleetResult:
    plan: PlanSpec
    hardware: list[HardwareDef]
    classes: list[ClassDef]
    capacity: CapacityTable
    scenarios: list[ScenarioResult]
    bargaining: Bargaining | None

    @property
    def base(self) -> ScenarioResult:
        return self.scenarios[0]


def plan_fleet(plan: PlanSpec | str | Path, scenarios: list[str] | None = None, *, cache_dir: str | Path | None = None,
               bargaining: bool = True, progress: Callable[[str], None] | None = None) -> FleetResult:
    """Solve the plan under the base case and each scenario (and the bargaining figure when the plan has
    custom silicon). Raises FleetError with one line naming the field or the infeasible constraint."""
    if not isinstance(plan, PlanSpec):
        plan = load_plan(plan)
    specs = select(plan, scenarios)
    classes = class_defs(plan)
    hardware = hardware_defs(plan)
    model = model_of(plan)
    caps = capacities(model, hardware, classes, plan.requests_per_probe, cache_dir, progress)
    results = []
    for spec in specs:
        if progress:
            progress(f"solve {spec.name}")
        try:
            results.append(ScenarioResult(spec, solve(compile_plan(plan, hardware, classes, caps, spec))))
        except Infeasible as err:
            if spec.name == "base":   # the plan itself cannot be met: that is bad input
                raise FleetError(f"infeasible: {err}") from None
            results.append(ScenarioResult(spec, None, str(err)))
    bp = None
    if bargaining and any(h.kind == "custom" for h in hardware):
        if progress:
            progress("bargaining power")

        def solve_at(mult: float, allow: bool) -> Solution:
            shock = ScenarioSpec(name=f"gpu-price x{mult:.3f}", gpu_price=mult - 1.0)
            return solve(compile_plan(plan, hardware, classes, caps, shock, allow_custom=allow))
        bp = bargaining_power(solve_at)
    return FleetResult(plan, hardware, classes, caps, results, bp)


def summary(r: ScenarioResult) -> dict[str, Any]:
    """Headline figures of one scenario's optimal plan."""
    s = r.solution
    if s is None:
        return {"scenario": r.name, "shocks": shocks(r.spec), "infeasible": r.infeasible}
    inst = s.instance
    tokens = inst.tokens_per_month.sum()
    custom_tokens = float(np.sum(s.custom_share * inst.tokens_per_month.sum(axis=0)))
    built = [o.name for i, o in enumerate(inst.options) if o.kind == "custom" and s.built[i] and s.delivered[i].sum()]
    return {
        "scenario": r.name,
        "shocks": shocks(r.spec),
        "total_cost_usd": s.cost,
        "capex_usd": s.capex,
        "opex_usd": s.opex,
        "usd_per_mtok_mean": float(s.monthly_cost.sum() / max(tokens, 1e-300) * 1e6),
        "usd_per_mtok_first": float(s.usd_per_mtok[0]),
        "usd_per_mtok_last": float(s.usd_per_mtok[-1]),
        "custom_share_tokens": float(custom_tokens / max(tokens, 1e-300)),
        "custom_share_last": float(s.custom_share[-1]),
        "custom_built": built,
        "chips_bought": int(s.delivered.sum()),
        "peak_mw": float(s.provisioned_mw().max()),
        "peak_rented": int(round(max((s.in_service[i].max() for i, o in enumerate(inst.options) if o.kind == "rent"),
                                     default=0.0))),
        "binding": s.binding,
        "gap": s.gap,
        "solve_s": s.solve_s,
        "infeasible": "",
    }


def rows(result: FleetResult) -> list[dict[str, Any]]:
    """Store rows: per-class capacities, per-scenario summaries and per scenario x month x option figures."""
    out: list[dict[str, Any]] = []
    for (chip, cls), (dep, cap) in sorted(result.capacity.items()):
        out.append({"key": f"capacity/{chip}/{cls}", "kind": "capacity", "hardware": chip, "class": cls,
                    "tp": dep.tp if dep else None, "precision": dep.weight_precision if dep else None,
                    "rate_per_replica": cap.rate_per_replica if cap else 0.0,
                    "output_tokens_per_s_per_chip": cap.output_tokens_per_s_per_chip if cap else 0.0,
                    "input_tokens_per_s_per_chip": cap.input_tokens_per_s_per_chip if cap else 0.0,
                    "ttft_p_s": _finite(cap.ttft_p) if cap else None, "tpot_p_s": _finite(cap.tpot_p) if cap else None,
                    "power_w_per_chip": cap.power_w_per_chip if cap else 0.0})
    for r in result.scenarios:
        sm = summary(r)
        row = {"key": f"summary/{r.name}", "kind": "summary", **sm, "shocks": _shock_text(sm["shocks"])}
        if r.solution is not None:
            row.update(binding="; ".join(sm["binding"]), custom_built=", ".join(sm["custom_built"]))
        out.append(row)
        s = r.solution
        if s is None:
            continue
        inst = s.instance
        mw = s.provisioned_mw()
        for t in range(inst.months):
            month = inst.label(t)
            out.append({"key": f"month/{r.name}/{t:03d}", "kind": "month", "scenario": r.name, "month": month,
                        "usd_per_mtok": _finite(float(s.usd_per_mtok[t])), "cost_usd": float(s.monthly_cost[t]),
                        "custom_share": float(s.custom_share[t]),
                        "provisioned_mw": float(mw[t]), "capacity_mw": float(inst.power_cap_w[t] / 1e6),
                        "tokens": float(inst.tokens_per_month[:, t].sum())})
            for o, opt in enumerate(inst.options):
                if s.in_service[o, t] <= 0 and s.delivered[o, t] <= 0:
                    continue
                out.append({"key": f"fleet/{r.name}/{t:03d}/{opt.name}", "kind": "fleet", "scenario": r.name,
                            "month": month, "option": opt.name, "option_kind": opt.kind,
                            "chips": float(s.in_service[o, t]), "delivered": float(s.delivered[o, t]),
                            **{f"chips_{c}": float(s.route[o, k, t]) for k, c in enumerate(inst.classes)}})
    if result.bargaining is not None:
        b = result.bargaining
        out.append({"key": "bargaining", "kind": "bargaining", "worth_building_now": b.worth_building_now,
                    "saving_usd": _finite(b.saving_usd), "breakeven_multiplier": _finite(b.breakeven_multiplier),
                    "price_cut": _finite(b.price_cut)})
    return out


def _shock_text(shock: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:+.0%}" if k in ("gpu_price", "rent_price") else f"{k}={v}" for k, v in shock.items()) \
        or "-"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


__all__ = ["FleetResult", "ScenarioResult", "plan_fleet", "rows", "summary"]
