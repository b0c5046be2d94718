"""Scenarios: named shocks on the base plan, and the bargaining-power figure.

A scenario is the base programme with other numbers (`fleet.inputs.compile_plan` applies the shocks), so
scenarios compare like with like. Shocks are defined in the plan (`scenarios:`) or given on the command
line in short form: `gpu-price:-30` (percent), `rent-price:+20`, `supply:0.5` (multiplier on GPU supply
caps), `slip:6` (tape-out slip, months), `yield:0.7` (custom-chip yield factor), `demand:high|low`,
`power:0.8` (multiplier on datacenter capacity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tokenfab.fleet.milp import Infeasible, Solution
from tokenfab.fleet.plan import FleetError, PlanSpec, ScenarioSpec

SHORT_FORMS = ("gpu-price:PCT", "rent-price:PCT", "supply:X", "slip:MONTHS", "yield:X", "demand:high|low", "power:X")


def parse_short(text: str) -> ScenarioSpec:
    """`gpu-price:-30` -> ScenarioSpec(name='gpu-price:-30', gpu_price=-0.3), and the other short forms."""
    key, _, arg = text.partition(":")
    try:
        if key == "gpu-price":
            return ScenarioSpec(name=text, gpu_price=float(arg) / 100.0)
        if key == "rent-price":
            return ScenarioSpec(name=text, rent_price=float(arg) / 100.0)
        if key == "supply":
            return ScenarioSpec(name=text, supply=float(arg))
        if key == "slip":
            return ScenarioSpec(name=text, tapeout_slip_months=int(arg))
        if key == "yield":
            return ScenarioSpec(name=text, yield_factor=float(arg))
        if key == "demand" and arg in ("high", "low"):
            return ScenarioSpec(name=text, demand=arg)
        if key == "power":
            return ScenarioSpec(name=text, power=float(arg))
    except ValueError:
        pass
    raise FleetError(f"--scenarios {text!r}: not a scenario of the plan nor a short form ({', '.join(SHORT_FORMS)})")


def select(plan: PlanSpec, names: list[str] | None) -> list[ScenarioSpec]:
    """Base first, then the named scenarios (default: every scenario of the plan)."""
    by_name = {s.name: s for s in plan.scenarios}
    picked = list(plan.scenarios) if names is None else [
        by_name[n] if n in by_name else parse_short(n) for n in names if n != "base"]
    seen: set[str] = set()
    out = [ScenarioSpec(name="base")]
    for s in picked:
        if s.name not in seen:
            seen.add(s.name)
            out.append(s)
    return out


def shocks(s: ScenarioSpec) -> dict[str, object]:
    """The scenario's shocks as a plain dict (for tables and the store)."""
    return {k: v for k, v in s.model_dump(exclude={"name", "source", "sources", "note", "assumption"}).items()
            if v is not None}


@dataclass(frozen=True)
class Bargaining:
    """How far GPU prices must fall before no custom chip is worth building (multiplier on today's price)."""

    worth_building_now: bool
    saving_usd: float              # discounted saving of the plan with custom silicon at today's prices
    breakeven_multiplier: float    # custom chips stop paying below this GPU price multiplier (nan: never built)
    iterations: int

    @property
    def price_cut(self) -> float:
        return 1.0 - self.breakeven_multiplier


def bargaining_power(solve_at: Callable[[float, bool], Solution], lo: float = 0.05, tol: float = 0.01,
                     max_iter: int = 20) -> Bargaining:
    """Bisection on the GPU price multiplier m: the smallest m at which the optimal plan still builds a custom
    chip. `solve_at(m, allow_custom)` solves the plan with GPU prices x m."""
    def builds(m: float) -> tuple[bool, Solution]:
        sol = solve_at(m, True)
        custom = [i for i, o in enumerate(sol.instance.options) if o.kind == "custom"]
        return bool(any(sol.built[i] and sol.delivered[i].sum() > 0 for i in custom)), sol

    now, with_custom = builds(1.0)
    try:
        without = solve_at(1.0, False).cost
    except Infeasible:
        without = float("inf")
    saving = without - with_custom.cost
    if not now:
        return Bargaining(False, saving, float("nan"), 1)
    ok_lo, _ = builds(lo)
    if ok_lo:
        return Bargaining(True, saving, lo, 2)
    a, b, n = lo, 1.0, 2          # builds at b, not at a
    while b - a > tol and n < max_iter:
        mid = 0.5 * (a + b)
        ok, _ = builds(mid)
        n += 1
        if ok:
            b = mid
        else:
            a = mid
    return Bargaining(True, saving, b, n)


__all__ = ["SHORT_FORMS", "Bargaining", "bargaining_power", "parse_short", "select", "shocks"]
