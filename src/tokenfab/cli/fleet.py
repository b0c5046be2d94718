"""`tokenfab fleet`: plan fleets month by month under scenarios, store each plan's run, write its report.

Several plans in one call are solved one after another, each its own run and report. Every plan is read and
every plan solved before anything is written, so one bad or infeasible plan leaves the store and the reports as
they were."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.io import JsonOpt, check_output, err, fail, out, print_json
from tokenfab.cli.options import STORE_DEFAULT, StoreOpt


def fleet(
    plans: Annotated[list[Path], typer.Argument(
        metavar="PLAN", help="fleet plan YAML, one or more (examples/fleet/*.yaml); each plan is solved and stored "
                             "as its own run")],
    scenarios: Annotated[str | None, typer.Option(help="comma-separated scenario names of the plan or short forms "
                                                        "(gpu-price:-30, supply:0.5, slip:6, yield:0.7, "
                                                        "demand:high, power:0.8); default: all of the plan's")] = None,
    store: StoreOpt = STORE_DEFAULT,
    report: Annotated[Path | None, typer.Option(help="HTML report of the one plan (default: PLAN-report.html by the "
                                                     "store); refused with several plans, whose reports always go "
                                                     "to PLAN-report.html by the store")] = None,
    cache: Annotated[Path | None, typer.Option(help="SLO-capacity cache folder")] = Path(".tokenfab-cache"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute every SLO capacity")] = False,
    bargaining: Annotated[bool, typer.Option(help="bisect the GPU price at which a custom chip stops paying")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Plan a fleet month by month (purchases, rentals, custom silicon, routing) under scenarios; prints a summary,
    stores the run and writes the report section. Several plans: one run and one report each; --json then prints
    {"plans": [...]}, one object per plan as a single plan prints it."""
    from tokenfab.fleet.plan import FleetError
    from tokenfab.fleet.planner import plan_fleet
    check_output("--store", store)
    if report is not None and len(plans) > 1:
        fail(f"--report {str(report)!r}: names one file, and {len(plans)} plans were given; leave it out (each "
             "report goes to PLAN-report.html by the store)")
    names = [n.strip() for n in scenarios.split(",") if n.strip()] if scenarios is not None else None
    specs = _load_plans(plans, names)
    reports = [report or store.parent / f"{p.stem}-report.html" for p in plans]
    _check_distinct(plans, reports)
    for path in reports:
        check_output("--report", path)
    from tokenfab.store import Store, StoreError
    try:
        Store(store).check()
    except StoreError as e:
        fail(str(e))
    results = []
    for path, spec in zip(plans, specs, strict=True):
        where = f"{path.stem}: " if len(plans) > 1 else ""
        try:
            results.append(plan_fleet(spec, names, cache_dir=None if no_cache else cache, bargaining=bargaining,
                                      progress=lambda m, w=where: err.print(f"  {w}{m}", highlight=False,
                                                                            markup=False)))
        except FleetError as e:
            fail(_named(path, e))
    stored = _write(plans, results, reports, store)
    answers = []
    for result, (run_id, n_rows), path in zip(results, stored, reports, strict=True):
        if as_json:
            answers.append({**_fleet_json(result), "run_id": run_id, "rows": n_rows, "store": str(store),
                            "report": str(path)})
            continue
        _print_fleet(result, _title(result))
        out.print(f"stored run {run_id} ({n_rows} rows) in {store}; report {path}")
    if as_json:
        print_json(answers[0] if len(answers) == 1 else {"plans": answers})


def _named(path: Path, e: Exception) -> str:
    """The error's one line, naming the plan file it is about (once: the plan reader names it already)."""
    msg = str(e)
    return msg if msg.startswith(f"{path}: ") else f"{path}: {msg}"


def _check_distinct(plans: list[Path], reports: list[Path]) -> None:
    """Two plans must not write one report (the same file twice, or two files of one name in other folders)."""
    seen: dict[Path, Path] = {}
    for plan, path in zip(plans, reports, strict=True):
        key = path.resolve()
        if key in seen:
            first = seen[key]
            if first.resolve() == plan.resolve():
                fail(f"{plan}: given twice")
            fail(f"{first} and {plan}: both would write the report {path}; rename one of the plan files")
        seen[key] = plan


def _load_plans(paths: list[Path], names: list[str] | None) -> list[Any]:
    """Every plan read, validated and its scenarios resolved before any is solved: a missing or malformed plan
    is one line naming its file, and nothing has been computed or written."""
    from tokenfab.fleet.plan import FleetError, load_plan
    from tokenfab.fleet.scenarios import select
    specs = []
    for path in paths:
        try:
            spec = load_plan(path)
            select(spec, names)
        except FleetError as e:
            fail(_named(path, e))
        specs.append(spec)
    return specs


def _title(result: Any) -> str:
    return f"fleet plan {result.plan.name}: {result.plan.model}, {result.plan.start} + {result.plan.months} months"


def _write(plans: list[Path], results: list[Any], reports: list[Path], store: Path) -> list[tuple[str, int]]:
    """Each plan's report (written beside its final name, moved in place last) and its run in the store; the
    (run id, rows) of each. A failure removes the reports not yet in place, one line naming what failed."""
    import os
    import tempfile

    from tokenfab.fleet.planner import rows, summary
    from tokenfab.report.fleet import fleet_html
    from tokenfab.store import Store
    temps: list[str] = []
    stored = []
    tables = [rows(result) for result in results]
    try:
        for result, data, path in zip(results, tables, reports, strict=True):
            page = fleet_html(_title(result), data, result.plan.description or "")
            folder = path.parent if str(path.parent) else Path(".")
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(suffix=".html.part", dir=folder)
                temps.append(tmp)
                with os.fdopen(fd, "w") as fh:
                    fh.write(page)
                os.chmod(tmp, 0o644)
            except OSError as e:
                fail(f"--report {path}: cannot write: {e.strerror}")
        for plan, result, data in zip(plans, results, tables, strict=True):
            try:
                db = Store(store)
                run_id = db.start_run("fleet", {"plan": str(plan), "name": result.plan.name,
                                                "scenarios": [r.name for r in result.scenarios]})
                db.write_points(run_id, data)
                db.finish_run(run_id, {"base": {k: v for k, v in summary(result.base).items() if k != "shocks"},
                                       "bargaining": next((r for r in data if r["kind"] == "bargaining"), None)})
            except Exception as e:  # noqa: BLE001 (the store is another module's; report its failure in one line)
                fail(f"--store {store}: {str(e).splitlines()[0]}")
            stored.append((run_id, len(data)))
    except BaseException:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in zip(temps, reports, strict=True):
        os.replace(tmp, path)
    return stored


def _print_fleet(result: Any, title: str) -> None:
    """The fleet plan's tables: one row per scenario, the base plan's chips by month, the bargaining line."""
    from rich.table import Table

    from tokenfab.fleet.planner import summary
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
    from tokenfab.fleet.planner import summary
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
