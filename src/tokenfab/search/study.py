"""Build or buy: the custom chip against what can be bought at its first delivery, with error bars.

From the screened rows of a design run, this prices the recommended custom chip (bought through a design
partner or built in-house: `economics.CustomTerms`) and every catalog accelerator that can be bought when the
custom chip first arrives (catalog `availability` dates; prices declined to that date) under one seeded Monte
Carlo over every uncertain constant, the demand and the delivery delay. It answers: $/Mtok against the best
GPU, TPU and Trainium of that date; latency per traffic class; tokens per watt; the demand at which the chip
pays back; the GPU price below which it no longer pays (`bargaining`); how a supply shock and a tape-out slip
move it; and the five inputs that swing it most (a tornado of the custom/best-bought cost ratio).

Every fleet is the screen's chosen deployment per class, re-costed under each draw: a draw of the custom
chip's software maturity scales the chips it needs, a draw of the demand scales both fleets (not the fixed
costs), a draw of the tape-out-to-delivery delay moves the catalog prices along their decline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tokenfab.constants import Draws, get, percentiles
from tokenfab.economics import HOURS_PER_YEAR
from tokenfab.search import chips as C
from tokenfab.search.problem import DesignProblem
from tokenfab.search.screen import fleet_cost
from tokenfab.units import month_index, month_label

FAMILIES = ("gpu", "tpu", "trainium")
FAMILY_NAMES = {"gpu": "GPU", "tpu": "TPU", "trainium": "Trainium"}
DEMAND_LABEL = "demand_output_tokens_per_day"


# ---- draws that scale, pin or record --------------------------------------------------------------------


class Scaled(Draws):
    """Another `Draws` with some constants multiplied (a scenario: HBM dearer in a supply shock)."""

    def __init__(self, base: Draws, factors: dict[str, float]) -> None:
        super().__init__(base.n, base.seed)
        self.base, self.factors = base, factors
        self.used = base.used

    def __call__(self, name: str, *path: str) -> Any:
        v = self.base(name, *path)
        return v * self.factors[name] if name in self.factors else v

    def triangular(self, label: str, low: float, mode: float, high: float) -> Any:
        return self.base.triangular(label, low, mode, high)


class Probe(Draws):
    """Nominal draws that also record the model-derived uncertain figures (`triangular`) they were asked for."""

    def __init__(self) -> None:
        super().__init__(None)
        self.figures: dict[str, tuple[float, float, float]] = {}

    def triangular(self, label: str, low: float, mode: float, high: float) -> Any:
        self.figures[label] = (min(low, mode), mode, max(high, mode))
        return mode


class Pinned(Draws):
    """Nominal constants except one (a catalog constant or a model-derived figure) held at its low or high."""

    def __init__(self, name: str, side: str) -> None:
        super().__init__(None)
        self.pin, self.side = name, side

    def __call__(self, name: str, *path: str) -> Any:
        u = get(name, *path)
        self.used[u.name] = u
        if u.name == self.pin:
            return u.low if self.side == "low" else u.high
        return u.value

    def triangular(self, label: str, low: float, mode: float, high: float) -> Any:
        if label == self.pin:
            return min(low, mode) if self.side == "low" else max(high, mode)
        return mode


# ---- costs of one screened row under one set of draws -----------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """A candidate's fleet serving the problem's demand, under the constants of one `Draws`."""

    usd: np.ndarray          # $ per million output tokens, everything included
    fleet_h: np.ndarray      # $/h of the fleet (capex annualised, power, maintenance), fixed costs aside
    bare_h: np.ndarray       # the same fleet with the accelerator priced at zero (the part price does not move)
    fixed_h: np.ndarray      # a design's NRE annualised plus its software run cost, $/h (0 for a catalog chip)
    nre: np.ndarray          # a design's one-off cost to the buyer
    run_h: np.ndarray        # a design's software run cost, $/h
    unit: np.ndarray         # price paid per chip
    tps: np.ndarray          # output tokens/s served


_CANDS: dict[tuple[str, str], C.Candidate] = {}


def candidate_for(problem: DesignProblem, row: dict[str, Any]) -> C.Candidate:
    """The candidate a stored row was screened as (built once per problem)."""
    key = (problem.key, row["key"])
    if key not in _CANDS:
        if row["custom"]:
            _CANDS[key] = C.custom_candidate(problem, row["axes"])
        else:
            _CANDS.update({(problem.key, c.key): c for c in C.catalog_candidates(problem)})
    return _CANDS[key]


def _arr(x: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def costs(problem: DesignProblem, row: dict[str, Any], d: Draws, *, terms: Any = None, years: Any = None,
          scale: Any = 1.0, demand_scale: Any = 1.0) -> Costs:
    """Re-cost a screened row: its deployments per class, priced under `d` (the custom chip on `terms`, a catalog
    chip `years` of price decline after the catalog's price date times `scale`), at the demand x `demand_scale`."""
    cand = candidate_for(problem, row)
    pr = C.price_draws(cand, d, row.get("chips") or 1, terms or problem.terms, years, scale)
    slower = cand.maturity / pr.maturity if cand.custom else 1.0   # a less mature stack needs more chips
    fleet = bare = 0.0
    for p in row["classes"]:
        tps = _arr(p["tps_per_replica"] / slower)
        args = (cand, tps, np.array([p["devices"]]), np.array([p["replica_power_w"]]), p["demand_tps"] * demand_scale,
                problem.utilisation, d)
        fleet = fleet + fleet_cost(*args, pr.unit)[0]
        bare = bare + fleet_cost(*args, 0.0 * pr.unit)[0]
    total = _arr(sum(p["demand_tps"] for p in row["classes"]) * demand_scale)
    usd = (fleet + pr.fixed_h) / (total * 3600.0) * 1e6
    return Costs(_arr(usd), _arr(fleet), _arr(bare), _arr(pr.fixed_h), _arr(pr.nre), _arr(pr.run_h), _arr(pr.unit),
                 total)


def band(x: Any) -> list[float]:
    """P10, P50, P90; nearest-rank so that 'never' (inf) draws stay inf instead of turning into NaN."""
    arr = np.sort(_arr(x))
    if np.isfinite(arr).all():
        return list(percentiles(arr))
    idx = np.clip(np.round(np.array([0.1, 0.5, 0.9]) * (arr.size - 1)).astype(int), 0, arr.size - 1)
    return [float(v) for v in arr[idx]]


def demand_scale(problem: DesignProblem, d: Draws) -> Any:
    """The demand drawn over its range, as a multiple of the problem's demand (1 where no range is given)."""
    lo, hi = problem.demand_range
    if lo == hi:
        return 1.0
    return d.triangular(DEMAND_LABEL, lo / problem.demand, 1.0, hi / problem.demand)


def delay_years(problem: DesignProblem, d: Draws) -> Any:
    """Years the drawn tape-out-to-delivery delay adds to (or takes from) the nominal one, where the delivery is
    derived from a tape-out date (0 where the problem gives the first delivery)."""
    spec = problem.custom_spec
    if spec.first_delivery or not spec.tapeout:
        return 0.0
    return (d("tapeout_to_delivery_months") - get("tapeout_to_delivery_months").value) / 12.0


def available_at(row: dict[str, Any], month: int) -> bool:
    when = row.get("availability")
    return not when or month_index(when) <= month


def years_at(problem: DesignProblem, row: dict[str, Any], month: int) -> float:
    """Years of price decline a catalog row's price has had by `month` (from its price date or its launch)."""
    when = row.get("availability")
    since = max(problem.price_month, month_index(when)) if when else problem.price_month
    return max(month - since, 0) / 12.0


def payback(c: Costs, b: Costs, demand: float, scale: Any) -> dict[str, list[float]]:
    """Demand (output tokens/day) from which the custom fleet plus its fixed costs costs what the bought fleet
    costs (both fleets grow with demand, the fixed costs do not), and years to repay the one-off cost from the
    hourly saving net of the software run cost at the drawn demand."""
    saving = b.fleet_h - c.fleet_h
    net = saving - c.run_h
    with np.errstate(divide="ignore", invalid="ignore"):
        at = demand * np.asarray(scale, dtype=float)
        be = np.where(saving > 0, at * c.fixed_h / np.where(saving > 0, saving, 1.0), np.inf)
        yrs = np.where(net > 0, c.nre / np.where(net > 0, net, 1.0) / HOURS_PER_YEAR, np.inf)
    return {"demand_tokens_per_day": band(be), "years_at_demand": band(yrs)}


def bargaining(c: Costs, b: Costs) -> np.ndarray:
    """The multiple of the bought chip's price (at the delivery date) at which both fleets cost the same: the
    custom chip pays while the bought chip costs more than this, and no longer pays below it."""
    custom_total = c.fleet_h + c.fixed_h
    price_part = b.fleet_h - b.bare_h
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(price_part > 0, (custom_total - b.bare_h) / np.where(price_part > 0, price_part, 1.0), np.inf)


def latency(problem: DesignProblem, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per traffic class: its SLO and the TPOT and TTFT tail the chosen deployment of each option gives."""
    out = []
    for cls in problem.classes:
        entry: dict[str, Any] = {"class": cls.name, "model": cls.model,
                                 "slo": {"ttft_ms": cls.ttft_s * 1e3, "tpot_ms": cls.tpot_s * 1e3,
                                         "percentile": cls.percentile}}
        for name, row in rows.items():
            p = next((p for p in row["classes"] if p["class"] == cls.name), None)
            entry[name] = None if p is None else {
                "chip": row["label"], "tpot_ms": p["tpot_s"] * 1e3, "ttft_ms": p["ttft_tail_s"] * 1e3,
                "tokens_per_s_per_user": 1.0 / p["tpot_s"], "deployment": f"tp{p['tp']} pp{p['pp']} "
                f"{p['weight_precision']}/kv {p['kv_precision']}{' P/D' if p['disaggregated'] else ''}"}
        out.append(entry)
    return out


def _option(row: dict[str, Any], c: Costs) -> dict[str, Any]:
    return {"label": row["label"], "family": row.get("family"), "availability": row.get("availability"),
            "usd_per_mtok": band(c.usd), "tokens_per_watt": row["tokens_per_j"], "tokens_per_j": row["tokens_per_j"],
            "chips": row["chips"], "unit_price_usd": band(c.unit), "tokens_per_s_per_user": row["user_tps"]}


def _best(problem: DesignProblem, rows: list[dict[str, Any]], d: Draws, month: int, dscale: Any, delta: Any,
          price_scale: Any = 1.0) -> tuple[dict[str, Any] | None, Costs | None]:
    """The row of lowest P50 $/Mtok among `rows` (already filtered), re-costed at `month`."""
    best: tuple[float, str, dict[str, Any], Costs] | None = None
    for r in rows:
        c = costs(problem, r, d, years=years_at(problem, r, month) + delta, scale=price_scale, demand_scale=dscale)
        key = (float(np.median(c.usd)), r["key"])
        if best is None or key < best[:2]:
            best = (*key, r, c)
    return (None, None) if best is None else (best[2], best[3])


def _verdict(ratio: list[float], share: float) -> str:
    if ratio[2] < 1.0:
        return "build: the custom chip is cheaper than the best bought option in at least 90% of draws"
    if ratio[1] < 1.0:
        return f"lean build: cheaper at P50 ({share:.0%} of draws), but not robustly"
    if ratio[0] < 1.0:
        return f"lean buy: dearer at P50, cheaper in {share:.0%} of draws"
    return "buy: the best bought option is cheaper in at least 90% of draws"


def answer(problem: DesignProblem, custom: dict[str, Any], catalog_rows: list[dict[str, Any]],
           d: Draws) -> dict[str, Any]:
    """The build-or-buy answer for the recommended custom chip (see the module's docstring)."""
    spec = problem.custom_spec
    delivery = problem.delivery_month()
    bought = [r for r in catalog_rows if r.get("feasible") and r.get("buyable", True)]
    avail = [r for r in bought if available_at(r, delivery)]
    if not avail:
        return {"error": "no catalog accelerator that can be bought at the first delivery serves this traffic"}
    s = demand_scale(problem, d)
    delta = delay_years(problem, d)
    c = costs(problem, custom, d, demand_scale=s)
    fam_rows: dict[str, tuple[dict[str, Any], Costs]] = {}
    for fam in FAMILIES:
        row, cost = _best(problem, [r for r in avail if r.get("family") == fam], d, delivery, s, delta)
        if row is not None and cost is not None:
            fam_rows[fam] = (row, cost)
    best_row, b = _best(problem, avail, d, delivery, s, delta)
    assert best_row is not None and b is not None
    ratio = c.usd / b.usd
    options: dict[str, Any] = {"custom": {
        "label": custom["label"], "family": "custom", "availability": month_label(delivery),
        "usd_per_mtok": band(c.usd), "tokens_per_watt": custom["tokens_per_j"], "tokens_per_j": custom["tokens_per_j"],
        "chips": custom["chips"], "unit_price_usd": band(c.unit), "unit_cost_usd": custom.get("mfg_usd"),
        "nre_usd": band(c.nre), "software_run_usd_per_year": band(c.run_h * HOURS_PER_YEAR),
        "software_maturity": custom.get("maturity"), "tokens_per_s_per_user": custom["user_tps"]}}
    for fam, (row, cost) in fam_rows.items():
        options[fam] = {**_option(row, cost), "custom_cost_ratio": band(c.usd / cost.usd),
                        "custom_cheaper_share": float(np.mean(c.usd < cost.usd)),
                        "payback_demand_tokens_per_day": payback(c, cost, problem.demand, s)["demand_tokens_per_day"]}
    gpu = fam_rows.get("gpu")
    barg: dict[str, Any] = {}
    for name, (row, cost) in ((("gpu", gpu),) if gpu else ()) + (("best_bought", (best_row, b)),):
        r = bargaining(c, cost)
        rb = band(r)
        unit = float(np.median(cost.unit))
        barg[name] = {"against": row["label"], "price_ratio": rb,
                      "price_usd_per_chip": [x * unit for x in rb], "price_at_delivery_usd": unit}
    if gpu:
        rb = barg["gpu"]["price_ratio"][1]
        barg["gpu_price_ratio"] = barg["gpu"]["price_ratio"]
        barg["meaning"] = (f"the custom chip pays while {gpu[0]['label']} costs more than {rb:.2f}x its price at the "
                           f"delivery date (${barg['gpu']['price_at_delivery_usd']:,.0f} per chip); below that, buy"
                           if rb < 1 else
                           f"the custom chip pays only if {gpu[0]['label']} cost more than {rb:.2f}x its price at the "
                           f"delivery date: bargaining power, not savings")
    scen = scenarios(problem, custom, bought, d, s, delta, delivery, c, best_row, b)
    latest = {fam: sorted({r["label"] for r in avail if r.get("family") == fam and r.get("availability")})
              for fam in FAMILIES}
    later = sorted({f"{r['label']} ({r['availability']})" for r in bought if not available_at(r, delivery)})
    return {
        "question": " ".join(str(problem.raw.get("question") or "").split()) or None,
        "partner": spec.partner, "partner_name": spec.partner_name, "generation": spec.generation,
        "tapeout": spec.tapeout, "first_delivery": month_label(delivery), "catalog_price_date": spec.catalog_price_date,
        "years_of_price_decline": max(delivery - problem.price_month, 0) / 12.0,
        "met": {"best": {fam: fam_rows[fam][0]["label"] for fam in fam_rows},
                "next_generation_available": {f: v for f, v in latest.items() if v}, "not_yet_available": later},
        "demand_output_tokens_per_day": problem.demand, "demand_range": list(problem.demand_range),
        "options": options,
        "best_bought": {"label": best_row["label"], "family": best_row.get("family"), "usd_per_mtok": band(b.usd)},
        "custom_cost_ratio": band(ratio), "custom_cheaper_share": float(np.mean(c.usd < b.usd)),
        "verdict": _verdict(band(ratio), float(np.mean(c.usd < b.usd))),
        "payback": {"against": best_row["label"], **payback(c, b, problem.demand, s)},
        "bargaining": barg,
        "latency": latency(problem, {"custom": custom, **{f: r for f, (r, _) in fam_rows.items()}}),
        "scenarios": scen,
        "tornado": tornado(problem, custom, best_row),
    }


def scenarios(problem: DesignProblem, custom: dict[str, Any], bought: list[dict[str, Any]], d: Draws, s: Any,
              delta: Any, delivery: int, c: Costs, best_row: dict[str, Any], b: Costs) -> list[dict[str, Any]]:
    """The base case, a supply shock (bought prices and the custom chip's HBM up) and a tape-out slip (a respin's
    masks, the software team's slipped months, and the bought options of the later date at their later prices)."""
    sp = problem.scenario_spec
    premium = sp.supply_shock_price_premium
    premium = get("supply_shock_price_premium").value if premium is None else premium
    slip = sp.tapeout_slip_months
    slip = get("tapeout_slip_months").value if slip is None else slip

    def entry(name: str, month: int, cc: Costs, row: dict[str, Any], bb: Costs) -> dict[str, Any]:
        return {"name": name, "first_delivery": month_label(month), "custom_usd_per_mtok": band(cc.usd),
                "best_bought": row["label"], "best_bought_usd_per_mtok": band(bb.usd),
                "custom_cost_ratio": band(cc.usd / bb.usd), "custom_cheaper_share": float(np.mean(cc.usd < bb.usd)),
                "payback_demand_tokens_per_day": payback(cc, bb, problem.demand, s)["demand_tokens_per_day"]}

    out = [entry("base", delivery, c, best_row, b)]
    shocked = Scaled(d, {"hbm_price_usd_per_gb": 1.0 + premium})
    cs = costs(problem, custom, shocked, demand_scale=s)
    avail = [r for r in bought if available_at(r, delivery)]
    row, bs = _best(problem, avail, d, delivery, s, delta, 1.0 + premium) if avail else (None, None)
    if row is not None and bs is not None:
        out.append({**entry(f"supply shock: bought accelerators and HBM +{premium:.0%}", delivery, cs, row, bs),
                    "price_premium": premium})
    later = delivery + int(round(slip))
    cl = costs(problem, custom, d, terms=replace(problem.terms, slip_months=slip), demand_scale=s)
    avail = [r for r in bought if available_at(r, later)]
    row, bl = _best(problem, avail, d, later, s, delta) if avail else (None, None)
    if row is not None and bl is not None:
        out.append({**entry(f"tape-out slip: +{slip:g} months (respin)", later, cl, row, bl), "slip_months": slip})
    return out


def tornado(problem: DesignProblem, custom: dict[str, Any], bought: dict[str, Any],
            top: int = 5) -> list[dict[str, Any]]:
    """The custom/best-bought $/Mtok ratio at each Monte Carlo input's low and high (the others nominal): every
    catalog constant either option uses, the demand, and the model-derived ranges (prices, TDPs, rentals)."""
    delivery = problem.delivery_month()

    def ratio(d: Draws) -> float:
        s = demand_scale(problem, d)
        delta = delay_years(problem, d)
        c = costs(problem, custom, d, demand_scale=s)
        b = costs(problem, bought, d, years=years_at(problem, bought, delivery) + delta, demand_scale=s)
        return float(c.usd[0] / b.usd[0])

    probe = Probe()
    base = ratio(probe)
    inputs = {u.name: (u.low, u.value, u.high, u.source) for u in probe.used.values() if u.low < u.high}
    lo, hi = problem.demand_range
    inputs.update({k: (*v, problem.raw.get("demand_source") if k == DEMAND_LABEL else "catalog range (hardware.yaml)")
                   for k, v in probe.figures.items() if v[0] < v[2]})
    if DEMAND_LABEL in inputs:
        inputs[DEMAND_LABEL] = (lo, problem.demand, hi, " ".join(str(problem.raw.get("demand_source") or "").split()))
    bars = []
    for name, (low, value, high, source) in inputs.items():
        r_lo, r_hi = ratio(Pinned(name, "low")), ratio(Pinned(name, "high"))
        bars.append({"input": name, "constant": name, "low": r_lo, "high": r_hi, "base": base, "value": value,
                     "range": [low, high], "source": source})
    bars.sort(key=lambda b: (-abs(b["high"] - b["low"]), b["input"]))
    return bars[:top]


__all__ = ["Costs", "Pinned", "Probe", "Scaled", "answer", "available_at", "band", "bargaining", "candidate_for",
           "costs", "demand_scale", "payback", "tornado"]
