"""`tokenfab design`: a thin command over `search.run`; prints the answer the search returns."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.io import JsonOpt, check_output, err, fail, out, print_json, titled
from tokenfab.cli.options import STORE_DEFAULT, StoreOpt, one_of


def _payback_demand(d: list[float]) -> str:
    """The demand (P10, P50, P90) from which the chip pays back its NRE and software, in words where no demand
    does: a chip whose cost per token is above the rival's never catches up, however much it serves."""
    if not math.isfinite(d[0]):
        return ("never pays back its NRE and software, at any demand: its cost per token stays above the rival's "
                "in every draw")
    if not math.isfinite(d[1]):
        return (f"does not pay back its NRE and software at any demand in most draws (in the best tenth, from "
                f"{d[0]:.3g} output tokens/day)")
    upper = f"{d[2]:.3g}" if math.isfinite(d[2]) else "never"
    return f"pays back its NRE and software from {d[1]:.3g} output tokens/day (P10-P90 {d[0]:.3g} to {upper})"


def _band(b: list[float], fmt: str = "${:.3f}") -> str:
    return f"{fmt.format(b[1])} ({fmt.format(b[0])}-{fmt.format(b[2])})"


def _deps(row: dict[str, Any]) -> str:
    return "; ".join(f"{p['class']}: tp{p['tp']} pp{p['pp']}"
                     f"{' ep' + str(p['ep']) if p.get('ep', 1) > 1 else ''}"
                     f"{' mtp' + str(p['mtp']) if p.get('mtp') else ''} {p['weight_precision']}/kv {p['kv_precision']} "
                     f"batch<={p['max_batch']} chunk {p['chunk_tokens']}"
                     f"{' P/D 1:' + format(p['pd_ratio'], '.2f') if p['disaggregated'] else ''}"
                     for p in row["classes"])


def print_answer(s: dict[str, Any]) -> None:
    """The answer: recommended custom chip, best catalog option, $/Mtok with bands, break-even, agreement."""
    from rich.table import Table
    c, g = s["custom"], s.get("gpu")
    prob = s["problem"]
    out.print(titled("tokenfab design", f": {', '.join(cl['name'] for cl in prob['classes'])} on "
              f"{', '.join(prob['models'])}, {prob['demand_output_tokens_per_day']:.3g} output tokens/day, "
              f"node {prob['constraints']['node']}, <= {prob['constraints'].get('power_w') or '-'} W per chip"))
    sr = s["search"]
    out.print(f"screened {sr['points_screened']:,} deployment points: {sr['custom_evaluated']} of "
              f"{sr['custom_space']:,} custom chips (local search) + {len(s['catalog'])} catalog accelerators")
    axes = c.get("axes") or {}
    cost = f" (cost ${c['mfg_usd']:,.0f})" if c.get("mfg_usd") and c["mfg_usd"] != c["unit_usd"] else ""
    out.print(titled("\nRecommended custom chip", f": {c['label']}  (TDP {c['tdp_w']:,.0f} W, unit price "
              f"${c['unit_usd']:,.0f}{cost}, NRE ${c['nre_usd'] / 1e6:,.0f}M with software, software "
              f"${(c.get('run_usd_per_year') or 0) / 1e6:,.0f}M/yr; {json.dumps(axes)})"))
    out.print(f"  $/Mtok out: {_band(s['custom_band'])} P50 (P10-P90); {c['chips']:,.0f} chips; "
              f"{c['user_tps']:.0f} tok/s/user; {c['tokens_per_j']:.2f} tok/J")
    out.print(f"  deployment: {_deps(c)}")
    if g:
        out.print(titled("Best catalog option", f": {g['label']}"))
        out.print(f"  $/Mtok out: {_band(s['gpu_band'])} P50 (P10-P90); {g['chips']:,.0f} chips; "
                  f"{g['user_tps']:.0f} tok/s/user; {g['tokens_per_j']:.2f} tok/J")
        out.print(f"  deployment: {_deps(g)}")
        be = s["breakeven"]
        d = be["demand_tokens_per_day"]
        verdict = "cheaper" if s["custom_band"][1] < s["gpu_band"][1] else "dearer"
        out.print(titled("Break-even", f": the custom chip is {verdict} at this demand (cheaper in "
                  f"{be['custom_cheaper_share']:.0%} of draws); it {_payback_demand(d)}"
                  + (f", {be['years_at_demand'][1]:.1f} years at this demand" if be['years_at_demand'][1] < 1e3
                     else "")))
    if s.get("study") and "error" not in s["study"]:
        print_study(s["study"])
    t = s["tiers"]
    rho = "n/a" if t["spearman"] is None else f"{t['spearman']:.3f}"
    out.print(f"Tier agreement: Spearman {rho} between screen and simulator $/Mtok on the best {t['k']}")
    table = Table("#", "chip", "$/Mtok", "tok/s/user", "tok/J", "chips", title="side by side (catalog, best first)")
    table.add_row("*", c["label"], f"{c['usd_per_mtok']:.3f}", f"{c['user_tps']:.0f}", f"{c['tokens_per_j']:.2f}",
                  f"{c['chips']:,.0f}")
    buyable = [r for r in s["catalog"] if r["usd_per_mtok"] is not None and r.get("available", True)
               and r.get("buyable", True)]
    for i, r in enumerate(buyable[:8], 1):
        table.add_row(str(i), r["label"], f"{r['usd_per_mtok']:.3f}", f"{r['user_tps']:.0f}",
                      f"{r['tokens_per_j']:.2f}", f"{r['chips']:,.0f}")
    out.print(table)


FAMILY = {"gpu": "GPU", "tpu": "TPU", "trainium": "Trainium"}


def print_study(st: dict[str, Any]) -> None:
    """Build or buy: the custom chip against the best GPU, TPU and Trainium of its delivery date."""
    from rich.table import Table
    who = st.get("partner_name") or st["partner"]
    out.print(titled("\nBuild or buy", f" at first delivery {st['first_delivery']}"
              + (f" (tape-out {st['tapeout']})" if st.get("tapeout") else "")
              + f": {who} partner, generation {st['generation']}; catalog prices declined from "
              f"{st['catalog_price_date']} ({st['years_of_price_decline']:.2f} years)"))
    met = st["met"]
    best = ", ".join(f"{FAMILY[k]} {v}" for k, v in met["best"].items())
    nxt = "; ".join(", ".join(v) for v in met["next_generation_available"].values())
    later = ", ".join(met["not_yet_available"])
    out.print(f"  it meets: best {best}" + (f"; newly launched by then: {nxt}" if nxt else "")
              + (f"; not yet available: {later}" if later else ""))
    table = Table("option", "chip", "$/Mtok P50 (P10-P90)", "custom / it", "tok/s per W", "chips", "unit price",
                  title="cost per output token at the first delivery (Monte Carlo P10-P90)")
    for key, o in st["options"].items():
        name = "custom" if key == "custom" else f"best {FAMILY[key]}"
        ratio = "-" if key == "custom" else _band(o["custom_cost_ratio"], "{:.2f}")
        chip = o["label"] + (f" ({o['availability']})" if o.get("availability") and key != "custom" else "")
        table.add_row(name, chip, _band(o["usd_per_mtok"]), ratio, f"{o['tokens_per_watt']:.2f}",
                      f"{o['chips']:,.0f}", _band(o["unit_price_usd"], "${:,.0f}"))
    out.print(table)
    out.print(f"  verdict: {st['verdict']} (custom / best bought {st['best_bought']['label']}: "
              f"{_band(st['custom_cost_ratio'], '{:.2f}')}, custom cheaper in {st['custom_cheaper_share']:.0%} "
              "of draws)")
    pb = st["payback"]
    d, y = pb["demand_tokens_per_day"], pb["years_at_demand"]
    out.print(f"  payback against {pb['against']}: the chip {_payback_demand(d)}; study demand "
              f"{st['demand_output_tokens_per_day']:.3g}"
              + (f", NRE repaid in {y[1]:.1f} years" if y[1] < 1e3 else ", NRE never repaid at this demand (P50)"))
    b = st["bargaining"]
    if b.get("meaning"):
        r = b["gpu_price_ratio"]
        out.print(f"  bargaining: {b['meaning']} (P10-P90 {r[0]:.2f}-{r[2]:.2f}x)")
    lat = Table("class (SLO)", *[k for k in st["options"]], title="latency of the chosen deployments: TPOT / TTFT "
                                                                   "tail, ms")
    for row in st["latency"]:
        slo = row["slo"]
        cells = ["-" if row.get(k) is None else f"{row[k]['tpot_ms']:.0f} / {row[k]['ttft_ms']:,.0f}"
                 for k in st["options"]]
        lat.add_row(f"{row['class']} ({slo['tpot_ms']:.0f} / {slo['ttft_ms']:,.0f} p{slo['percentile']:g})", *cells)
    out.print(lat)
    for sc in st["scenarios"]:
        out.print(f"  scenario {sc['name']}: custom {_band(sc['custom_usd_per_mtok'])} vs {sc['best_bought']} "
                  f"{_band(sc['best_bought_usd_per_mtok'])}; ratio {_band(sc['custom_cost_ratio'], '{:.2f}')}")
    from tokenfab.labels import readable
    out.print("  swings most (custom / best-bought cost ratio at each input's low - high):")
    for i, t in enumerate(st["tornado"], 1):
        out.print(f"    {i}. {readable(t['input'])} {t['range'][0]:.3g}-{t['range'][1]:.3g}: {t['low']:.3f} - "
                  f"{t['high']:.3f} (base {t['base']:.3f})")


def design(
    problem: Annotated[str | None, typer.Option("--problem", help="problem YAML (default: the embedded one)")] = None,
    workload: Annotated[str | None, typer.Option("--workload", "--traffic",
                                                 help="traffic: presets joined by + (chat+rag) or a workload YAML")]
    = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="model id (repeat for several)")] = None,
    demand: Annotated[float | None, typer.Option(help="output tokens per day over the whole mix")] = None,
    node: Annotated[str | None, typer.Option(help="process node of the custom chip")] = None,
    power_w: Annotated[float | None, typer.Option("--power-w", help="TDP limit per chip, W")] = None,
    max_chiplets: Annotated[int | None, typer.Option(help="compute dies per package")] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="fleet capex limit (chips + NRE)")] = None,
    seed: Annotated[int, typer.Option(help="search seed")] = 0,
    max_chips: Annotated[int | None, typer.Option(help="most custom chips to evaluate")] = None,
    exhaustive: Annotated[bool, typer.Option(help="evaluate every custom chip of the space")] = False,
    top: Annotated[int, typer.Option("--top", "--top-k", help="the best N candidates (custom and catalog) simulated "
                                                             "in tier 2")] = 12,
    sim_requests: Annotated[int, typer.Option(help="requests per simulation")] = 1500,
    samples: Annotated[int, typer.Option(help="Monte Carlo samples for the bands")] = 1000,
    store: StoreOpt = STORE_DEFAULT,
    fresh: Annotated[bool, typer.Option("--fresh", help="recompute every point even where the store holds this run "
                                                        "(its stored points are replaced)")] = False,
    backend: Annotated[str, typer.Option(help="where the points are evaluated: this machine's processes, or a Ray "
                                         "cluster", callback=one_of("tokenfab.search.backends:BACKENDS"))] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a local one)")] = None,
    jobs: Annotated[int | None, typer.Option(help="worker processes")] = None,
    report: Annotated[Path, typer.Option(help="HTML report path")] = Path("report.html"),
    png: Annotated[Path | None, typer.Option(help="also write PNGs of the plots into this folder")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Search the chip, cluster and deployment that make the traffic mix cheapest under every SLO."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tokenfab.search.backends import BackendError
    from tokenfab.search.problem import DesignInputError, DesignProblem
    from tokenfab.search.run import SearchOptions
    from tokenfab.search.run import design as run_design
    from tokenfab.store import Store

    check_output("--report", report)
    check_output("--png", png, folder=True)
    check_output("--store", store)
    from tokenfab.store import StoreError
    try:
        Store(store).check()
    except StoreError as e:
        fail(str(e))
    for name, value, low in (("--top", top, 3), ("--sim-requests", sim_requests, 100), ("--samples", samples, 10)):
        if value < low:
            fail(f"{name} = {value}: at least {low}")
    if max_chips is not None and max_chips < 1:
        fail(f"--max-chips = {max_chips}: at least 1")
    try:
        prob = DesignProblem.load(problem, traffic=workload, models=model or None,
                                  demand_output_tokens_per_day=demand, node=node, power_w=power_w,
                                  max_chiplets=max_chiplets, budget_usd=budget_usd)
    except DesignInputError as e:
        fail(str(e))
    opts = SearchOptions(seed=seed, budget=max_chips, exhaustive=exhaustive, top_k=top, sim_requests=sim_requests,
                         samples=samples)
    start = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err.rich, transient=False, disable=json_out) as bar:
        tasks: dict[str, Any] = {}
        began: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, rate="")
                began[stage] = time.monotonic()
            rate = done / max(time.monotonic() - began[stage], 1e-6)
            bar.update(tasks[stage], completed=done, total=total, rate=f"{rate:,.1f}/s")

        try:
            summary = run_design(prob, Store(store), opts, backend, address, jobs, progress, fresh=fresh)
        except (DesignInputError, BackendError) as e:
            fail(str(e))
    from tokenfab.report import write_html, write_pngs
    write_html(summary, report)
    if png is not None:
        write_pngs(summary, png)
    if json_out:
        print_json(summary)
        return
    print_answer(summary)
    out.print(f"report: {report}  (run {summary['run_id']} in {store}; {time.monotonic() - start:.0f} s)")
    out.print(stored_line(summary["stored"]))


def stored_line(st: dict[str, Any]) -> str:
    """What the store gave the run: a rerun of a stored question reads its points back instead of recomputing
    them, which the user should know (and how to force a recompute)."""
    if st["fresh"]:
        return f"recomputed: --fresh, {st['points_computed']:,} points evaluated again (the stored run replaced)"
    if st["points_reused"] and not st["points_computed"]:
        return (f"reused the stored run: {st['points_reused']:,} points read back, none recomputed "
                "(--fresh recomputes)")
    if st["points_reused"]:
        return f"resumed the stored run: {st['points_reused']:,} points read back, {st['points_computed']:,} computed"
    return f"computed: {st['points_computed']:,} points evaluated"
