"""`tokenfab fleet`: plan a fleet month by month under scenarios, store the run, write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.io import JsonOpt, check_output, err, fail, out, print_json


def fleet(
    plan: Annotated[Path, typer.Argument(help="fleet plan YAML (examples/fleet/*.yaml)")],
    scenarios: Annotated[str | None, typer.Option(help="comma-separated scenario names of the plan or short forms "
                                                        "(gpu-price:-30, supply:0.5, slip:6, yield:0.7, "
                                                        "demand:high, power:0.8); default: all of the plan's")] = None,
    store: Annotated[Path, typer.Option(help="DuckDB results store")] = Path("tokenfab.duckdb"),
    report: Annotated[Path | None, typer.Option(help="HTML report (default: PLAN-report.html by the store)")] = None,
    cache: Annotated[Path | None, typer.Option(help="SLO-capacity cache folder")] = Path(".tokenfab-cache"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute every SLO capacity")] = False,
    bargaining: Annotated[bool, typer.Option(help="bisect the GPU price at which a custom chip stops paying")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Plan a fleet month by month (purchases, rentals, custom silicon, routing) under scenarios; prints a summary,
    stores the run and writes the report section."""
    import os
    import tempfile

    from tokenfab.report.fleet import fleet_html
    from tokenfab.search.fleet import plan_fleet, rows, summary
    from tokenfab.search.fleet_plan import FleetError
    check_output("--store", store)
    check_output("--report", report)
    from tokenfab.store import Store, StoreError
    try:
        Store(store).check()
    except StoreError as e:
        fail(str(e))
    names = [n.strip() for n in scenarios.split(",") if n.strip()] if scenarios is not None else None
    try:
        result = plan_fleet(plan, names, cache_dir=None if no_cache else cache, bargaining=bargaining,
                            progress=lambda m: err.print(f"  {m}", highlight=False, markup=False))
    except FleetError as e:
        fail(str(e))
    data = rows(result)
    title = f"fleet plan {result.plan.name}: {result.plan.model}, {result.plan.start} + {result.plan.months} months"
    if not as_json:
        _print_fleet(result, title)
    page = fleet_html(title, data, result.plan.description or "")
    report_path = report or store.parent / f"{plan.stem}-report.html"
    folder = report_path.parent if str(report_path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".html.part", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
    except OSError as e:
        fail(f"--report {report_path}: cannot write: {e.strerror}")
    try:
        db = Store(store)
        run_id = db.start_run("fleet", {"plan": str(plan), "name": result.plan.name,
                                        "scenarios": [r.name for r in result.scenarios]})
        db.write_points(run_id, data)
        db.finish_run(run_id, {"base": {k: v for k, v in summary(result.base).items() if k != "shocks"},
                               "bargaining": next((r for r in data if r["kind"] == "bargaining"), None)})
    except Exception as e:  # noqa: BLE001 (the store is another module's; report its failure in one line)
        os.unlink(tmp)
        fail(f"--store {store}: {str(e).splitlines()[0]}")
    os.replace(tmp, report_path)
    if as_json:
        print_json({**_fleet_json(result), "run_id": run_id, "rows": len(data), "store": str(store),
                    "report": str(report_path)})
        return
    out.print(f"stored run {run_id} ({len(data)} rows) in {store}; report {report_path}")


def _print_fleet(result: Any, title: str) -> None:
    """The fleet plan's tables: one row per scenario, the base plan's chips by month, the bargaining line."""
    from rich.table import Table

    from tokenfab.search.fleet import summary
    table = Table("scenario", "total $ (disc.)", "capex $", "opex $", "$/Mtok mean", "$/Mtok first->last",
                  "custom share", "binding / infeasible", title=title)
    for r in result.scenarios:
        sm = summary(r)
        if sm["infeasible"]:
            table.add_row(r.name, "infeasible", "", "", "", "", "", sm["infeasible"])
            continue
        table.add_row(r.name, f"{sm['total_cost_usd'] / 1e9:,.3f} B", f"{sm['capex_usd'] / 1e9:,.3f} B",
                      f"{sm['opex_usd'] / 1e9:,.3f} B", f"{sm['usd_per_mtok_mean']:.3f}",
                      f"{sm['usd_per_mtok_first']:.3f} -> {sm['usd_per_mtok_last']:.3f}",
                      f"{sm['custom_share_tokens']:.0%}", "; ".join(sm["binding"]) or "-")
    out.print(table)
    base = result.base.solution
    assert base is not None
    inst = base.instance
    step = max(1, inst.months // 8)
    months = list(range(0, inst.months, step)) + ([inst.months - 1] if (inst.months - 1) % step else [])
    ft = Table("hardware", *[inst.label(t) for t in months], title="base plan: chips in service (rented: in use)")
    for o, opt in enumerate(inst.options):
        if base.in_service[o].max() > 0:
            ft.add_row(opt.name, *[f"{base.in_service[o, t]:,.0f}" for t in months])
    ft.add_row("$/Mtok", *[f"{base.usd_per_mtok[t]:.3f}" for t in months])
    ft.add_row("custom share", *[f"{base.custom_share[t]:.0%}" for t in months])
    mw = base.provisioned_mw()
    ft.add_row("MW provisioned", *[f"{mw[t]:,.2f}" for t in months])
    out.print(ft)
    bp = result.bargaining
    if bp is not None:
        if bp.worth_building_now:
            out.print(f"bargaining power: the custom chip saves ${bp.saving_usd / 1e6:,.0f} M (discounted) at today's "
                      f"GPU prices and stays worth building until GPU prices fall {bp.price_cut:.0%} "
                      f"(x{bp.breakeven_multiplier:.2f}; bisection, {bp.iterations} solves)")
        else:
            out.print("bargaining power: at today's GPU prices the optimal plan does not build the custom chip")


def _fleet_json(result: Any) -> dict[str, Any]:
    """`fleet --json`: each scenario's summary (the table's figures in $, not $B), the base plan month by month
    (every month, where the table samples eight) and the bargaining bisection."""
    from tokenfab.search.fleet import summary
    base = result.base.solution
    assert base is not None
    inst = base.instance
    months = range(inst.months)
    bp = result.bargaining
    return {"plan": result.plan.name, "model": result.plan.model, "start": result.plan.start,
            "months": result.plan.months, "scenarios": [summary(r) for r in result.scenarios],
            "base_plan": {"month": [inst.label(t) for t in months],
                          "chips_in_service": {opt.name: base.in_service[o].tolist()
                                               for o, opt in enumerate(inst.options) if base.in_service[o].max() > 0},
                          "usd_per_mtok": base.usd_per_mtok.tolist(), "custom_share": base.custom_share.tolist(),
                          "provisioned_mw": base.provisioned_mw().tolist()},
            "bargaining": None if bp is None else {
                "worth_building_now": bp.worth_building_now, "saving_usd": bp.saving_usd,
                "gpu_price_cut": bp.price_cut, "breakeven_multiplier": bp.breakeven_multiplier,
                "iterations": bp.iterations}}
