"""`tokenfab silicon`: area, yield, cost and power of a chip design, and the silicon model's check on published
chips."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tokenfab.cli.common import band, band_json, check_samples
from tokenfab.cli.io import JsonOpt, fail, out, print_json
from tokenfab.cli.options import one_of


def _design(spec: str):
    from tokenfab.silicon import DesignError, resolve_design
    try:
        return resolve_design(spec)
    except DesignError as e:
        fail(str(e))


# the parts `silicon` breaks each figure into (its table and its JSON)
UNIT_COST_PARTS = ("silicon", "memory", "packaging", "assembly_loss", "test", "board")
POWER_PARTS = ("matrix", "vector", "dram", "sram", "links", "static")
DIE_AREA_PARTS = ("logic", "sram", "phy", "d2d", "block")


def silicon(
    design: Annotated[str | None, typer.Argument(help="design YAML, or a shipped design id")] = None,
    volume: Annotated[float, typer.Option(help="accelerators built, to spread the NRE")] = 100_000,
    yield_model: Annotated[str, typer.Option(help="die yield model, from the defect density",
                                             callback=one_of("tokenfab.silicon.cost:YIELD_MODELS"))]
    = "negative-binomial",
    samples: Annotated[int, typer.Option(help="Monte Carlo samples for the P10-P90 bands")] = 10_000,
    seed: Annotated[int, typer.Option(help="seed of the Monte Carlo draws over uncertain constants")] = 0,
    check: Annotated[bool, typer.Option("--check", help="leave-one-out area/TDP check on published chips")] = False,
    refit: Annotated[bool, typer.Option("--refit", help="refit the shipped scales on the published chips")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Area, yield, unit cost, NRE and power of a chip design, with P50 (P10-P90) bands."""
    from rich.table import Table
    if check or refit:
        _silicon_check(refit, as_json)
        return
    if design is None:
        from tokenfab.silicon import shipped_designs
        fail(f"give a design YAML or a shipped design id: {', '.join(sorted(shipped_designs()))}")
    check_samples(samples)
    from tokenfab.constants import Draws
    from tokenfab.silicon import DesignError, analyse
    from tokenfab.silicon.build import peak_flops
    from tokenfab.silicon.power import memory_bw
    dsg = _design(design)
    try:
        nominal = analyse(dsg, volume=volume, yield_model=yield_model)
        mc = analyse(dsg, Draws(n=samples, seed=seed), volume=volume, yield_model=yield_model) if samples else nominal
    except DesignError as e:
        fail(str(e))
    if as_json:
        print_json({"design": dsg.label, "node": dsg.node, "clock_ghz": dsg.clock_ghz, "cores": dsg.cores,
                    "spare_cores": dsg.spare_cores, "volume": volume, "yield_model": yield_model,
                    "samples": samples, "seed": seed, **_silicon_json(dsg, nominal, mc)})
        return
    table = Table("quantity", "nominal", "P50 (P10-P90)", title=f"{dsg.label}: {dsg.node}, {dsg.clock_ghz} GHz, "
                  f"{dsg.cores} cores" + (f" (+{dsg.spare_cores} spare)" if dsg.spare_cores else ""))

    def row(name: str, nom: Any, sampled: Any, fmt: str = "{:,.0f}") -> None:
        table.add_row(name, fmt.format(float(nom)), band(sampled, fmt))
    for i, (die, die_mc) in enumerate(zip(nominal.dies, mc.dies, strict=True)):
        label = f"{die.kind} die ({die.node}) x{die.count}"
        row(f"{label}: area mm2", die.total, die_mc.total)
        for part in DIE_AREA_PARTS:
            value = getattr(die, part)
            if float(value):
                table.add_row(f"  {part} mm2 (before uncore share)", f"{float(value):,.1f}", "")
        cost, cost_mc = nominal.unit.dies[i], mc.unit.dies[i]
        table.add_row("  dies per wafer", f"{float(cost.dies_per_wafer):,.0f}", "")
        row("  yield", cost.yield_, cost_mc.yield_, "{:.3f}")
        row("  known-good die $", cost.kgd_usd, cost_mc.kgd_usd)
    row("silicon area, all dies mm2", nominal.area, mc.area)
    row("interposer mm2", nominal.interposer, mc.interposer)
    for part in UNIT_COST_PARTS:
        row(f"unit cost: {part.replace('_', ' ')} $", getattr(nominal.unit, part), getattr(mc.unit, part))
    row("unit cost (manufacturing) $", nominal.unit.total, mc.unit.total)
    row("NRE $M", nominal.nre / 1e6, mc.nre / 1e6, "{:,.0f}")
    row(f"unit cost incl. NRE at {volume:,.0f} units $", nominal.unit_cost_with_nre, mc.unit_cost_with_nre)
    for part in POWER_PARTS:
        row(f"power at TDP load: {part} W", getattr(nominal.power, part), getattr(mc.power, part))
    row("TDP estimate W", nominal.power.tdp, mc.power.tdp)
    if dsg.tdp_w:
        table.add_row("TDP (design budget) W", f"{dsg.tdp_w:,.0f}", "")
    out.print(table)
    flops = peak_flops(dsg)
    out.print("peak dense TFLOP/s: " + ", ".join(f"{p} {v / 1e12:,.0f}" for p, v in flops.items())
              + f"; memory {memory_bw(dsg) / 1e12:.2f} TB/s; yield model {yield_model}; "
              f"{samples:,} samples, seed {seed}")


def _silicon_json(dsg: Any, nominal: Any, mc: Any) -> dict[str, Any]:
    """`silicon --json`: each figure of the table as {nominal, p10, p50, p90}, in mm2, $ and W (NRE in $, not $M);
    the peak TFLOP/s and memory bandwidth of the closing line."""
    from tokenfab.silicon.build import peak_flops
    from tokenfab.silicon.power import memory_bw
    dies = []
    for die, die_mc, cost, cost_mc in zip(nominal.dies, mc.dies, nominal.unit.dies, mc.unit.dies, strict=True):
        dies.append({"kind": die.kind, "node": die.node, "count": die.count,
                     "area_mm2": band_json(die_mc.total, die.total),
                     "parts_mm2_before_uncore": {p: float(getattr(die, p)) for p in DIE_AREA_PARTS
                                                 if float(getattr(die, p))},
                     "dies_per_wafer": float(cost.dies_per_wafer), "yield": band_json(cost_mc.yield_, cost.yield_),
                     "known_good_die_usd": band_json(cost_mc.kgd_usd, cost.kgd_usd)})
    return {"dies": dies, "area_mm2": band_json(mc.area, nominal.area),
            "interposer_mm2": band_json(mc.interposer, nominal.interposer),
            "unit_cost_usd": {p: band_json(getattr(mc.unit, p), getattr(nominal.unit, p)) for p in UNIT_COST_PARTS},
            "unit_cost_total_usd": band_json(mc.unit.total, nominal.unit.total),
            "nre_usd": band_json(mc.nre, nominal.nre),
            "unit_cost_with_nre_usd": band_json(mc.unit_cost_with_nre, nominal.unit_cost_with_nre),
            "power_at_tdp_load_w": {p: band_json(getattr(mc.power, p), getattr(nominal.power, p))
                                    for p in POWER_PARTS},
            "tdp_estimate_w": band_json(mc.power.tdp, nominal.power.tdp), "tdp_budget_w": dsg.tdp_w or None,
            "peak_dense_tflops": {p: v / 1e12 for p, v in peak_flops(dsg).items()},
            "memory_tb_per_s": memory_bw(dsg) / 1e12}


def _silicon_check(refit: bool, as_json: bool = False) -> None:
    """The leave-one-out check of the silicon model on published chips (after a refit, with --refit)."""
    from rich.table import Table

    from tokenfab.silicon.fit import leave_one_out, median_errors, write_fit
    scales = None
    if refit:
        scales = {k: v for k, v in write_fit().items() if k != "provenance"}
        if not as_json:
            out.print(f"wrote the fitted scales: {json.dumps(scales)}")
    rows = leave_one_out()
    if as_json:
        area, tdp = median_errors(rows)
        print_json({"chips": [{"id": r.id, "name": r.name, "node": r.node, "area_mm2": r.area_mm2,
                               "area_mm2_predicted": r.area_pred, "area_error": r.area_err, "tdp_w": r.tdp_w,
                               "tdp_w_predicted": r.tdp_pred, "tdp_error": r.tdp_err} for r in rows],
                    "median_abs_error": {"area": area, "tdp": tdp}, "fitted_scales": scales})
        return
    table = Table("chip", "node", "die mm2", "predicted", "error", "TDP W", "predicted", "error",
                  title="silicon model vs published chips (each predicted with scales fitted on the others)")
    for r in rows:
        def cell(v: float | None, fmt: str = "{:,.0f}") -> str:
            return "-" if v is None else fmt.format(v)
        table.add_row(r.name, r.node, cell(r.area_mm2), cell(r.area_pred), cell(r.area_err, "{:+.0%}"),
                      cell(r.tdp_w), cell(r.tdp_pred), cell(r.tdp_err, "{:+.0%}"))
    out.print(table)
    area, tdp = median_errors(rows)
    out.print(f"median |error|: area {area:.1%} ({sum(r.area_mm2 is not None for r in rows)} chips), "
              f"TDP {tdp:.1%} ({sum(r.tdp_w is not None for r in rows)} chips)")
