"""`design()`: the whole search — catalog and custom chips through one screen, the simulator on the
best K, bands, break-even and sensitivities — with every evaluated point in the results store.

Resumable: the run id is a hash of the problem, the search settings, the version and the data; points
already stored are read back instead of recomputed, and since each point depends only on its own inputs, the
resumed search walks the same path and ends with the same table. `fresh` recomputes every point all the same
(for a doubt the id cannot see, such as an edited source tree) and replaces the stored run. Nothing is
written until a design that meets every constraint is found, so a question with no answer leaves the store as
it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tokenfab import __version__, catalog
from tokenfab.constants import Draws, get
from tokenfab.search import chips as C
from tokenfab.search import study, tier2
from tokenfab.search.backends import make_backend
from tokenfab.search.optimise import Point, exhaustive, local_search
from tokenfab.search.problem import CHIP_AXES, DesignInputError, DesignProblem
from tokenfab.search.screen import evaluate, nre_per_hour
from tokenfab.store import Store

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SearchOptions:
    """How to search (part of the run's identity: other settings make another run)."""

    seed: int = 0
    starts: int = 4
    beam: int = 1
    budget: int | None = None        # most custom chips to evaluate (None: until the search converges)
    exhaustive: bool = False
    top_k: int = 12
    sim_requests: int = tier2.SIM_REQUESTS
    samples: int = 1000


# ---- worker-side tasks (top level so processes and Ray can pickle them) ------------------------------

_PROBLEMS: dict[str, DesignProblem] = {}


def _problem(raw: dict[str, Any]) -> DesignProblem:
    prob = DesignProblem(raw)
    return _PROBLEMS.setdefault(prob.key, prob)


def _candidate(prob: DesignProblem, kind: str, spec: Any) -> C.Candidate:
    if kind == "custom":
        return C.custom_candidate(prob, spec)
    return next(c for c in C.catalog_candidates(prob) if c.key == spec)


def eval_task(task: tuple[dict[str, Any], str, Any]) -> dict[str, Any]:
    raw, kind, spec = task
    prob = _problem(raw)
    return evaluate(prob, _candidate(prob, kind, spec))


def sim_task(task: tuple[dict[str, Any], str, Any, dict[str, Any], int, int]) -> dict[str, Any]:
    raw, kind, spec, row, seed, requests = task
    prob = _problem(raw)
    return tier2.simulate_candidate(prob, _candidate(prob, kind, spec), row, seed, requests)


# ---- the run -----------------------------------------------------------------------------------------


class _Points:
    """Evaluated rows: read back from the store when the run resumes, written once a feasible one exists.

    `fresh`: nothing is read back, and the stored run is replaced only when the first feasible row is written,
    so a recompute that finds no answer leaves the store as it was."""

    def __init__(self, store: Store, config: dict[str, Any], fresh: bool = False) -> None:
        self.store, self.config, self.fresh = store, config, fresh
        self.run_id: str | None = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.pending: list[dict[str, Any]] = []
        self.computed = 0
        from tokenfab.store import run_id_for
        rid = run_id_for("design", config)
        if not fresh and any(r["id"] == rid for r in store.runs()):
            self.run_id = rid
            self.rows = {r["key"]: r for r in store.point_rows(rid)}
        self.reused = len(self.rows)

    def add(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.rows[r["key"]] = r
        self.pending.extend(rows)
        self.computed += len(rows)
        if self.run_id is None and any(r.get("feasible") and r.get("custom") for r in self.rows.values()):
            self.run_id = self.store.start_run("design", self.config, fresh=self.fresh)
        if self.run_id is not None and self.pending:
            self.store.write_points(self.run_id, self.pending)
            self.pending = []


def design(problem: DesignProblem, store: Store, opts: SearchOptions = SearchOptions(), backend: str = "local",
           address: str | None = None, jobs: int | None = None, progress: Progress | None = None,
           fresh: bool = False) -> dict[str, Any]:
    """Search, simulate and price; returns the summary the CLI prints and the report renders. A question the
    store already holds is read back, not recomputed, unless `fresh` (not part of the run id: the same run)."""
    # the run id covers what the answer is computed from, not only the question: after a price, constant or
    # calibration change (or a new version) the same question is a new run, not the stored answer
    config = {"problem": problem.raw, "search": asdict(opts),
              "inputs": {"tokenfab": __version__, "data": catalog.fingerprint()}}
    pts = _Points(store, config, fresh)
    be = make_backend(backend, address, jobs)
    note = progress or (lambda stage, done, total: None)
    try:
        def run_tasks(kind: str, specs: list[Any], keys: list[str], stage: str) -> list[dict[str, Any]]:
            todo = [(s, k) for s, k in zip(specs, keys, strict=True) if k not in pts.rows]
            done = len(specs) - len(todo)
            note(stage, done, len(specs))
            chunk = max(2, 4 * getattr(be, "jobs", 2))
            for i in range(0, len(todo), chunk):
                part = todo[i:i + chunk]
                rows = list(be.map(eval_task, [(problem.raw, kind, s) for s, _ in part]))
                pts.add(rows)
                done += len(part)
                note(stage, done, len(specs))
            return [pts.rows[k] for k in keys]

        # catalog accelerators, through the same screen
        gpus = C.catalog_candidates(problem)
        run_tasks("catalog", [g.key for g in gpus], [g.key for g in gpus], "catalog chips")

        # custom chips: the search over the chip axes
        axes = [problem.space_values(a) for a in CHIP_AXES]
        sizes = [len(v) for v in axes]
        node = problem.constraints["node"]
        template = problem.raw.get("template", "inference-hbm")

        def spec_of(p: Point) -> dict[str, Any]:
            return {a: axes[i][j] for i, (a, j) in enumerate(zip(CHIP_AXES, p, strict=True))}

        def key_of(p: Point) -> str:
            return "c-" + C._key({"axes": spec_of(p), "node": node, "template": template})

        def objective(batch: list[Point]) -> list[float]:
            rows = run_tasks("custom", [spec_of(p) for p in batch], [key_of(p) for p in batch], "custom chips")
            return [r["usd_per_mtok"] if r.get("feasible") else math.inf for r in rows]

        if opts.exhaustive:
            exhaustive(sizes, objective)
        else:
            local_search(sizes, objective, opts.seed, opts.starts, opts.beam, opts.budget)

        rows = list(pts.rows.values())
        customs = [r for r in rows if r.get("custom") and not r["key"].startswith("sim-")]
        feasible = [r for r in customs if r.get("feasible")]
        if not feasible:
            raise DesignInputError(_binding_line(customs))
        # what can be bought when the custom chip first arrives (not another company's in-house chip)
        gpu_rows = [r for r in rows if not r.get("custom") and r.get("feasible") and not r["key"].startswith("sim-")
                    and r.get("available", True) and r.get("buyable", True)]

        # tier 2 on the best K (custom and catalog alike)
        ranked = sorted(feasible + gpu_rows, key=lambda r: (r["usd_per_mtok"], r["key"]))[: opts.top_k]
        sim_keys = ["sim-" + r["key"] for r in ranked]
        todo = [r for r in ranked if "sim-" + r["key"] not in pts.rows]
        note("simulation", len(ranked) - len(todo), len(ranked))
        for i in range(0, len(todo), 2):
            part = todo[i:i + 2]
            tasks = [(problem.raw, "custom" if r["custom"] else "catalog", r["axes"] if r["custom"] else r["key"], r,
                      opts.seed, opts.sim_requests) for r in part]
            pts.add(list(be.map(sim_task, tasks)))
            note("simulation", len(ranked) - len(todo) + i + len(part), len(ranked))
        sims = [pts.rows[k] for k in sim_keys]
    finally:
        be.close()
    summary = summarise(problem, opts, rows, sims, feasible, gpu_rows)
    assert pts.run_id is not None
    store.finish_run(pts.run_id, summary)
    summary["run_id"] = pts.run_id
    # how this call used the store (after finish_run: it describes the call, not the stored answer)
    summary["stored"] = {"fresh": fresh, "points_reused": pts.reused, "points_computed": pts.computed}
    return summary


def _binding_line(customs: list[dict[str, Any]]) -> str:
    """The constraint that rules out the most custom designs, named as the user wrote it."""
    reasons = [r.get("reason") or "" for r in customs]
    if not reasons:
        return "space: no custom chip to evaluate"
    heads = {}
    for reason in reasons:
        head = reason.split(":")[0]
        heads.setdefault(head, reason)
    counts = {h: sum(1 for r in reasons if r.split(":")[0] == h) for h in heads}
    head = max(counts, key=lambda h: (counts[h], h))
    return f"no custom design meets the constraints ({counts[head]} of {len(reasons)} ruled out by {heads[head]})"


# ---- the answer: bands, break-even, sensitivity, roofline, assumptions --------------------------------


def tornado(problem: DesignProblem, row: dict[str, Any], top: int = 5) -> list[dict[str, Any]]:
    """$/Mtok at each uncertain constant's low and high (the others nominal): the five widest swings."""
    def usd(d: Draws) -> float:
        return float(study.costs(problem, row, d, demand_scale=study.demand_scale(problem, d)).usd[0])

    probe = study.Probe()
    base = usd(probe)
    bars = []
    for name in [u.name for u in probe.used.values() if u.low < u.high]:
        lo, hi = usd(study.Pinned(name, "low")), usd(study.Pinned(name, "high"))
        u = probe.used[name]
        bars.append({"constant": name, "low": lo, "high": hi, "base": base, "value": u.value, "range": [u.low, u.high],
                     "source": u.source})
    bars.sort(key=lambda b: (-abs(b["high"] - b["low"]), b["constant"]))
    return bars[:top]


def roofline(problem: DesignProblem, row: dict[str, Any]) -> dict[str, Any]:
    """The chip's roofs and the operators of each class's steady decode step and prefill chunk on it."""
    from tokenfab.deployment import design_layout
    from tokenfab.perf.ops import KIND_NAMES, build_ops
    from tokenfab.perf.shapes import StepShapes
    from tokenfab.perf.timing import op_times, soft_roofline
    cand = _candidate(problem, "custom" if row["custom"] else "catalog", row["axes"] if row["custom"] else row["key"])
    chip, params = cand.chip, cand.params
    assert chip is not None and params is not None
    ops = []
    for p in row["classes"]:
        cls = next(c for c in problem.classes if c.name == p["class"])
        dep = design_layout(problem.models[p["model"]], p["tp"], p["pp"], p.get("ep", 1), p["weight_precision"],
                            p["kv_precision"], p.get("mtp", 0))
        b = max(p["batch"], 1.0)
        shapes = StepShapes.build(decode_seqs=[b, 0.0], decode_ctx=[b * (cls.isl_mean + cls.osl_mean / 2), 0.0],
                                  prefill_tokens=[0.0, p["chunk_tokens"]],
                                  prefill_pairs=[0.0, p["chunk_tokens"] * (cls.isl_mean + 1) / 2], logits=[b, 1.0])
        model = problem.models[p["model"]]
        table = build_ops(model, chip, dep, shapes)
        tc, tm = op_times(table, chip, params, dep.engine)
        t = soft_roofline(tc, tm, params.roof_q)
        for s, phase in enumerate(("decode", "prefill")):
            for j, name in enumerate(table.names):
                f, by = float(table.flops[s, j]), float(table.bytes[s, j])
                if f <= 0 or by <= 0 or t[s, j] <= 0:
                    continue
                ops.append({"class": p["class"], "phase": phase, "op": name, "kind": KIND_NAMES[table.kind[j]],
                            "intensity": f / by, "flops_per_s": f / float(t[s, j])})
    peak = max(chip.peak_flops.values()) if chip.peak_flops else 0.0
    return {"chip": row["label"], "peak_flops": peak, "peak_by_precision": chip.peak_flops, "mem_bw": chip.mem_bw,
            "ops": ops}


def summarise(problem: DesignProblem, opts: SearchOptions, rows: list[dict[str, Any]], sims: list[dict[str, Any]],
              customs: list[dict[str, Any]], gpus: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(customs, key=lambda r: (r["usd_per_mtok"], r["key"]))
    gpu = min(gpus, key=lambda r: (r["usd_per_mtok"], r["key"])) if gpus else None
    d = Draws(n=opts.samples, seed=opts.seed)
    scale = study.demand_scale(problem, d)
    c = study.costs(problem, best, d, demand_scale=scale)
    out: dict[str, Any] = {"custom": _brief(best), "custom_band": study.band(c.usd)}
    catalog_rows = [r for r in rows if not r.get("custom") and not r["key"].startswith("sim-")]
    if gpu is not None:
        delivery = problem.delivery_month()
        g = study.costs(problem, gpu, d, years=study.years_at(problem, gpu, delivery)
                        + study.delay_years(problem, d), demand_scale=scale)
        out["gpu"] = _brief(gpu)
        out["gpu_band"] = study.band(g.usd)
        out["breakeven"] = {**study.payback(c, g, problem.demand, scale),
                            "custom_cheaper_share": float(np.mean(c.usd < g.usd))}
        out["study"] = study.answer(problem, best, catalog_rows, d)
    out["catalog"] = sorted((_brief(r) for r in catalog_rows),
                            key=lambda r: (r["usd_per_mtok"] is None, r["usd_per_mtok"] or 0.0, r["key"]))
    screened = [r for r in rows if not r["key"].startswith("sim-")]
    out["search"] = {"custom_evaluated": sum(1 for r in screened if r.get("custom")),
                     "custom_space": int(np.prod([len(problem.space_values(a)) for a in CHIP_AXES])),
                     "points_screened": int(sum(r.get("screened") or 0 for r in screened))}
    s_scr = [s["screen_usd_per_mtok"] for s in sims]
    s_sim = [s["sim_usd_per_mtok"] for s in sims]
    out["tiers"] = {"k": len(sims), "spearman": tier2.agreement(s_scr, s_sim),
                    "rows": [{k: s[k] for k in ("label", "custom", "screen_usd_per_mtok", "sim_usd_per_mtok",
                                                "capacity_ratio")} for s in sims]}
    out["pareto"] = pareto(screened)
    out["breakdown"] = {"custom": breakdown(problem, best)} | ({"gpu": breakdown(problem, gpu)} if gpu else {})
    out["tornado"] = tornado(problem, best)
    out["roofline"] = roofline(problem, best)
    out["assumptions"] = assumptions(problem, d)
    out["problem"] = {"demand_output_tokens_per_day": problem.demand, "models": problem.model_ids,
                      "classes": [asdict(c) for c in problem.classes], "constraints": problem.constraints,
                      "utilisation": problem.utilisation, "demand_source": problem.raw.get("demand_source"),
                      "custom": problem.custom_spec.model_dump(exclude_none=True)}
    return out


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("key", "label", "custom", "feasible", "reason", "usd_per_mtok", "user_tps", "tokens_per_j", "chips",
            "capex_usd", "unit_usd", "nre_usd", "tdp_w", "axes", "classes", "mfg_usd", "run_usd_per_year", "maturity",
            "family", "availability", "available", "buyable")
    return {k: r.get(k) for k in keep}


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Non-dominated (min $/Mtok, max per-user tokens/s, max tokens/J) over every chip x speed tier."""
    pts = [{"label": r["label"], "custom": r["custom"], "floor": t["floor"], "usd_per_mtok": t["usd_per_mtok"],
            "user_tps": t["user_tps"], "tokens_per_j": t["tokens_per_j"]}
           for r in rows if r.get("feasible") for t in r.get("tiers", [])]
    out = []
    for p in pts:
        dominated = any(q["usd_per_mtok"] <= p["usd_per_mtok"] and q["user_tps"] >= p["user_tps"]
                        and q["tokens_per_j"] >= p["tokens_per_j"]
                        and (q["usd_per_mtok"], q["user_tps"], q["tokens_per_j"])
                        != (p["usd_per_mtok"], p["user_tps"], p["tokens_per_j"]) for q in pts)
        if not dominated:
            out.append({**p, "front": True})
    front = {(p["label"], p["floor"]) for p in out}
    rest = [{**p, "front": False} for p in pts if (p["label"], p["floor"]) not in front]
    # a resumed run reads its points back in another order: the answer is the same set, in one order
    return sorted(out, key=_pareto_order) + sorted(rest, key=_pareto_order)


def _pareto_order(p: dict[str, Any]) -> tuple:
    return (p["usd_per_mtok"], -p["user_tps"], -p["tokens_per_j"], p["label"], p["floor"])


def breakdown(problem: DesignProblem, row: dict[str, Any]) -> dict[str, float]:
    """$/Mtok by component: accelerator (for a design: silicon, HBM, package and the partner's margin), server and
    network, facility, power, maintenance, and for a design its NRE and software run cost."""
    from tokenfab.economics import hourly_cost
    from tokenfab.search.screen import network_share
    from tokenfab.silicon.build import analyse
    from tokenfab.silicon.design import ChipDesign
    cand = study.candidate_for(problem, row)
    d = Draws()
    total_tps = sum(p["demand_tps"] for p in row["classes"]) * 3600.0 / 1e6
    parts = dict.fromkeys(("silicon", "hbm", "package", "partner_margin", "accelerator", "server_network", "facility",
                           "power", "maintenance", "nre", "software"), 0.0)
    for p in row["classes"]:
        busy = p["replica_power_w"] / max(p["devices"], 1.0)
        hr = hourly_cost(cand.unit_usd, cand.tdp_w, min(busy, cand.tdp_w), d, problem.utilisation, cand.included,
                         network_share(cand, d, p["chips"]))
        for name in ("accelerator", "server_network", "facility", "power", "maintenance"):
            parts[name] += float(getattr(hr, name)) * p["chips"] / total_tps
    if row["custom"]:
        unit = analyse(ChipDesign.model_validate(cand.design), d).unit
        acc = parts.pop("accelerator")
        price = cand.unit_usd
        parts["silicon"] = acc * float(unit.silicon) / price
        parts["hbm"] = acc * float(unit.memory) / price
        parts["package"] = acc * (float(unit.total) - float(unit.silicon) - float(unit.memory)) / price
        parts["partner_margin"] = acc * (price - float(unit.total)) / price
        parts["nre"] = float(nre_per_hour(cand.nre_usd)) / total_tps
        parts["software"] = cand.run_usd_h / total_tps
    else:
        for k in ("silicon", "hbm", "package", "partner_margin", "nre", "software"):
            parts.pop(k)
    return parts


def assumptions(problem: DesignProblem, d: Draws) -> list[dict[str, Any]]:
    """Every uncertain constant the answer used, with its range and source, and the traffic's sources."""
    used = dict(d.used)
    for name in ("supply_shock_price_premium", "tapeout_slip_months"):   # the scenarios' settings
        used.setdefault(name, get(name))
    out = [{"name": u.name, "value": u.value, "low": u.low, "high": u.high, "source": u.source}
           for u in sorted(used.values(), key=lambda u: u.name)]
    if problem.raw.get("demand_source"):
        lo, hi = problem.demand_range
        out.append({"name": "demand_output_tokens_per_day", "value": problem.demand,
                    "low": lo if lo < hi else None, "high": hi if lo < hi else None,
                    "source": " ".join(str(problem.raw["demand_source"]).split())})
    from tokenfab import workload as W
    traffic = problem.raw.get("traffic")
    for name in traffic.get("mix", {}) if isinstance(traffic, dict) else []:
        info = W.preset_info(name)
        for c in info.get("classes", []):
            slo = c.get("slo") or {}
            out.append({"name": f"SLO {c['name']}: TTFT {slo.get('ttft_s')} s, TPOT {slo.get('tpot_s')} s, "
                                f"p{slo.get('percentile')}", "value": None, "low": None, "high": None,
                        "source": slo.get("source")})
    return out


__all__ = ["SearchOptions", "design", "eval_task", "pareto", "sim_task"]
