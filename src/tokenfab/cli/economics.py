"""`tokenfab compare`, `tco` and `breakeven`: what serving a model costs on each accelerator, owned or rented,
and when a custom chip pays back."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tokenfab.cli.common import band, band_json, check_samples, hardware_chip, load_cal
from tokenfab.cli.io import JsonOpt, fail, out, print_json
from tokenfab.cli.options import (
    CalibrationOpt,
    InputLenOpt,
    ModelOpt,
    OutputLenOpt,
    SamplesOpt,
    SeedOpt,
    UtilisationOpt,
    WorkloadOpt,
    one_of,
)


def compare(
    model: ModelOpt = "llama-3.1-70b",
    input_len: Annotated[float, typer.Option(help="prompt tokens per request")] = 2048,
    output_len: Annotated[float, typer.Option(help="generated tokens per request")] = 512,
    hardware: Annotated[list[str] | None, typer.Option(help="only these: catalog ids or design YAMLs (repeat)")] = None,
    utilisation: Annotated[float, typer.Option(help="share of hours at full throughput, for $/Mtok")] = 0.7,
    top: Annotated[int, typer.Option(help="rows to show")] = 40,
    calibration: CalibrationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank accelerators that can serve the model (best TP and precision for each), with TCO $/Mtok."""
    from rich.table import Table

    from tokenfab.compare import best_option
    from tokenfab.compare import compare as run_compare
    from tokenfab.model import ModelConfigError, load_model
    if input_len <= 0 or output_len <= 0:
        fail("--input-len and --output-len must be positive token counts")
    _check_utilisation(utilisation)
    try:
        load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    cal = load_cal(calibration)
    if hardware:
        found = [best_option(hardware_chip(h), model, input_len, output_len, cal) for h in hardware]
        options = sorted((o for o in found if o is not None), key=lambda o: -o.tokens_per_s_per_device)
    else:
        options = run_compare(model, input_len, output_len, cal)
    if not options:
        fail(f"model {model} fits on none of these accelerators with tp <= 8")
    shown = [(o, _tco_samples(o, input_len, output_len, utilisation)) for o in options[:top]]
    if as_json:
        print_json({"model": model, "input_len": input_len, "output_len": output_len, "utilisation": utilisation,
                    "options": [_option_json(i, o, tco) for i, (o, tco) in enumerate(shown, 1)]})
        return
    table = Table("#", "hardware", "tp", "precision", "out tok/s/device", "TPOT ms", "batch", "tok/J",
                  "TCO $/Mtok out P50 (P10-P90)", "cloud $/Mtok out",
                  title=f"{model}: {input_len:.0f} in / {output_len:.0f} out, offline max throughput")
    for i, (o, tco) in enumerate(shown, 1):
        cloud = "-" if o.usd_per_mtok is None else f"{o.usd_per_mtok:.2f} ({o.usd_per_mtok_low:.2f}-" \
            f"{o.usd_per_mtok_high:.2f})"
        table.add_row(str(i), o.chip.id, str(o.tp), o.precision, f"{o.tokens_per_s_per_device:,.0f}",
                      f"{o.tpot_ms:.1f}", f"{o.concurrency:.0f}",
                      f"{o.tokens_per_joule:.2f}" if o.chip.energy else "-",
                      "-" if tco is None else band(tco, "{:.2f}"), cloud)
    out.print(table)
    out.print(f"TCO $/Mtok: owned hardware at {utilisation:.0%} utilisation (capex over the depreciation life, "
              "power, facility, maintenance; 2,000 samples); cloud $/Mtok: the catalog's $/GPU-hour "
              "(low-high) at full utilisation; tok/J: component energy model, accelerators only.")


def _tco_samples(option: Any, isl: float, osl: float, utilisation: float) -> Any:
    """The sampled TCO $/Mtok output of one compare row (2,000 draws); None when the chip has no price or TDP."""
    from tokenfab.constants import Draws
    from tokenfab.economics import EconomicsError, Serving, token_cost
    power = option.tokens_per_s_per_device / option.tokens_per_joule if option.tokens_per_joule else 0.0
    try:
        return token_cost(Serving(option, isl, osl, 0.0, power), Draws(n=2000, seed=0), utilisation).usd_per_mtok_out
    except EconomicsError:
        return None


def _option_json(rank: int, o: Any, tco: Any) -> dict[str, Any]:
    """`compare --json`: one row of the ranking (tok/J and TCO null where the table shows '-')."""
    cloud = None if o.usd_per_mtok is None else {"low": o.usd_per_mtok_low, "typical": o.usd_per_mtok,
                                                 "high": o.usd_per_mtok_high}
    return {"rank": rank, "hardware": o.chip.id, "tp": o.tp, "precision": o.precision,
            "tokens_per_s_per_device": o.tokens_per_s_per_device, "tpot_ms": o.tpot_ms, "batch": o.concurrency,
            "tokens_per_joule": o.tokens_per_joule if o.chip.energy else None,
            "tco_usd_per_mtok_out": None if tco is None else band_json(tco), "cloud_usd_per_mtok_out": cloud}


def _check_utilisation(utilisation: float) -> None:
    if not 0 < utilisation <= 1:
        fail(f"--utilisation {utilisation}: allowed 0 < u <= 1")


def workload_lengths(preset: str) -> tuple[float, float]:
    """`--workload PRESET`: the preset's request-weighted mean input/output lengths."""
    from tokenfab import workload
    try:
        return workload.preset(preset).mean_lengths()
    except workload.WorkloadError as e:
        fail(str(e))


def _lengths(workload: str | None, input_len: float | None, output_len: float | None) -> tuple[float, float]:
    if workload is not None:
        return workload_lengths(workload)
    if input_len is None or output_len is None:
        fail("give --input-len and --output-len (or --workload PRESET)")
    if input_len <= 0 or output_len <= 0:
        fail("--input-len and --output-len must be positive token counts")
    return float(input_len), float(output_len)


def _serving(chip: Any, model: str, isl: float, osl: float, calibration: str | None):
    from tokenfab.economics import EconomicsError, serving
    from tokenfab.model import ModelConfigError, load_model
    try:
        load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    try:
        return serving(chip, model, isl, osl, load_cal(calibration))
    except EconomicsError as e:
        fail(str(e))


def tco(
    hardware: Annotated[str, typer.Option(help="catalog id or design YAML / shipped design id")],
    model: ModelOpt = "llama-3.1-70b",
    workload: WorkloadOpt = None,
    input_len: InputLenOpt = None,
    output_len: OutputLenOpt = None,
    utilisation: UtilisationOpt = 0.7,
    volume: Annotated[float, typer.Option(help="designs: units built, to spread the NRE")] = 100_000,
    cluster: Annotated[float | None, typer.Option(
        help="accelerators sharing the scale-out network (sizes its fat-tree tiers); default: the catalog's "
             "network_cluster_chips")] = None,
    samples: SamplesOpt = 10_000,
    seed: SeedOpt = 0,
    calibration: CalibrationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """$ per million tokens on owned hardware (TCO), with P10-P90 bands and the cost breakdown."""
    import numpy as np
    from rich.table import Table

    from tokenfab.constants import Draws
    from tokenfab.economics import EconomicsError, token_cost
    isl, osl = _lengths(workload, input_len, output_len)
    check_samples(samples)
    _check_utilisation(utilisation)
    if not volume > 0:
        fail(f"--volume {volume:g}: a positive number of accelerators is required")
    chip = hardware_chip(hardware)
    srv = _serving(chip, model, isl, osl, calibration)
    if cluster is not None and not cluster >= 1:
        fail(f"--cluster {cluster!r}: allowed 1 or more accelerators")
    try:
        tc = token_cost(srv, Draws(n=samples or None, seed=seed), utilisation, volume, cluster)
    except EconomicsError as e:
        fail(str(e))
    hr = tc.hourly
    if as_json:
        print_json(_tco_json(tc, model, isl, osl, samples, seed))
        return
    table = Table("quantity", "P50 (P10-P90)", "share of $/h",
                  title=f"{chip.id} serving {model}: {isl:.0f} in / {osl:.0f} out, tp {srv.option.tp} "
                        f"{srv.option.precision}, utilisation {utilisation:.0%}")
    total = hr.total
    for name, part in (("accelerator capex", hr.accelerator), ("server + network capex", hr.server_network),
                       ("facility capex", hr.facility), ("power (x PUE)", hr.power), ("maintenance", hr.maintenance)):
        share = float(np.median(np.asarray(part) / np.asarray(total)))
        table.add_row(f"$/h: {name}", band(part, "{:.3f}"), f"{share:.0%}")
    capex_share = float(np.median(np.asarray(hr.capex) / np.asarray(total)))
    power_share = float(np.median(np.asarray(hr.power) / np.asarray(total)))
    table.add_row("$/h per accelerator (TCO)", band(total, "{:.2f}"), "100%")
    table.add_row("output tokens/s per accelerator (full load)", f"{srv.out_tps:,.0f}", "")
    table.add_row("accelerator power at full load W", f"{srv.busy_power_w:,.0f}", "")
    table.add_row("$/Mtok output (all cost on output)", band(tc.usd_per_mtok_out, "{:.3f}"), "")
    table.add_row("$/Mtok input (prefill share)", band(tc.usd_per_mtok_in, "{:.3f}"), "")
    table.add_row("$/Mtok output (decode share)", band(tc.usd_per_mtok_out_only, "{:.3f}"), "")
    if tc.cloud_usd_per_mtok:
        lo, typ, hi = tc.cloud_usd_per_mtok
        c = chip.cloud_usd_hr
        table.add_row("cloud rental $/h (catalog)", f"{c.value:.2f} ({c.low:.2f}-{c.high:.2f})", "")
        table.add_row("$/Mtok output on cloud rental", f"{typ:.3f} ({lo:.3f}-{hi:.3f})", "")
    out.print(table)
    if tc.basis is not None:
        held = f"; the price holds the {' and '.join(sorted(tc.basis.includes))}" if tc.basis.includes else ""
        out.print(f"accelerator price basis: {tc.basis.kind} ({tc.basis.note}){held}")
    if hr.network is not None:
        out.print(_network_line(hr.network))
    out.print(f"capex share {capex_share:.0%}, power share {power_share:.0%}; {samples:,} samples, seed {seed}")


def _network_line(share: Any) -> str:
    """One line on the chip's network share: capex by part, power, scale-out tiers at the cluster size."""
    from tokenfab.network import summary
    n = summary(share)
    usd, w = n["usd_per_accelerator"], n["w_per_accelerator"]
    return (f"network per accelerator: scale-up ${usd['scaleup']:,.0f} in the rack + ${usd['pod']:,.0f} beyond it "
            f"({n['scaleup_kind']}, domain {n['scaleup_domain']}), NIC ${usd['nic']:,.0f}, scale-out fabric "
            f"${usd['scaleout']:,.0f} ({n['port']} ports, {n['scaleout_tiers']:.0f}-tier fat tree for "
            f"{n['cluster_chips']:,.0f} chips); {sum(w.values()):,.0f} W (parts a price holds are not charged again)")


def _tco_json(tc: Any, model: str, isl: float, osl: float, samples: int, seed: int) -> dict[str, Any]:
    """`tco --json`: each figure as {p10, p50, p90}, the layout and the price basis behind them."""
    hr, srv = tc.hourly, tc.serving
    out_json: dict[str, Any] = {
        "hardware": srv.chip.id, "model": model, "input_len": isl, "output_len": osl,
        "utilisation": tc.utilisation, "tp": srv.option.tp, "precision": srv.option.precision,
        "output_tokens_per_s_per_device": srv.out_tps, "busy_power_w": srv.busy_power_w,
        "usd_per_mtok_out": band_json(tc.usd_per_mtok_out), "usd_per_mtok_in": band_json(tc.usd_per_mtok_in),
        "usd_per_mtok_out_only": band_json(tc.usd_per_mtok_out_only), "usd_per_hour": band_json(hr.total),
        "usd_per_hour_parts": {k: band_json(getattr(hr, k)) for k in
                               ("accelerator", "server_network", "facility", "power", "maintenance")},
        "price_basis": None if tc.basis is None else {"kind": tc.basis.kind, "includes": sorted(tc.basis.includes),
                                                      "note": tc.basis.note},
        "samples": samples, "seed": seed,
    }
    if hr.network is not None:
        from tokenfab.network import summary
        out_json["network"] = summary(hr.network)
    if tc.cloud_usd_per_mtok:
        lo, typ, hi = tc.cloud_usd_per_mtok
        out_json["cloud_usd_per_mtok_out"] = {"low": lo, "typical": typ, "high": hi}
    return out_json


def breakeven(
    design: Annotated[str, typer.Option(help="design YAML or shipped design id")],
    gpu: Annotated[str, typer.Option(help="catalog GPU id to compare against")] = "h100-sxm",
    model: ModelOpt = "llama-3.1-70b",
    demand: Annotated[float, typer.Option(help="output tokens per day to serve")] = 1e12,
    workload: WorkloadOpt = None,
    input_len: InputLenOpt = None,
    output_len: OutputLenOpt = None,
    utilisation: UtilisationOpt = 0.7,
    samples: SamplesOpt = 10_000,
    seed: SeedOpt = 0,
    calibration: CalibrationOpt = None,
    partner: Annotated[str, typer.Option(help="how the chip is bought: broadcom-style (a design partner's price and "
                                         "NRE share) or in-house (at cost, all of the NRE)",
                                         callback=one_of("tokenfab.economics:PARTNERS"))] = "broadcom-style",
    generation: Annotated[int, typer.Option(help="the custom chip's generation (software maturity, NRE reuse)")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Volume and time at which a custom design, bought as it would be (partner price, buyer's NRE share,
    software NRE and team, first-generation software maturity), costs less than a GPU fleet."""
    from rich.table import Table

    from tokenfab.constants import Draws
    from tokenfab.economics import CustomTerms, EconomicsError, break_even
    from tokenfab.silicon import is_design_ref
    try:
        terms = CustomTerms(partner, generation)
    except EconomicsError as e:
        fail(str(e).replace("custom.", "--"))
    isl, osl = _lengths(workload, input_len, output_len)
    check_samples(samples)
    if demand <= 0:
        fail(f"--demand {demand}: a positive number of output tokens per day")
    _check_utilisation(utilisation)
    if not is_design_ref(design):
        fail(f"--design {design!r}: give a design YAML or a shipped design id")
    g = _serving(hardware_chip(gpu), model, isl, osl, calibration)
    c = _serving(hardware_chip(design), model, isl, osl, calibration)
    try:
        be = break_even(g, c, demand, Draws(n=samples or None, seed=seed), utilisation, terms=terms)
    except EconomicsError as e:
        fail(str(e))
    if as_json:
        print_json({"model": model, "demand_output_tokens_per_day": demand, "input_len": isl, "output_len": osl,
                    "utilisation": utilisation, "partner": partner, "generation": generation,
                    "gpu": _fleet_side_json(g, be.gpus_needed, be.gpu, be.gpu_life_cost),
                    "custom": _fleet_side_json(c, be.customs_needed, be.custom, be.custom_life_cost),
                    "break_even_volume_chips": band_json(be.volume), "break_even_years": band_json(be.years),
                    "samples": samples, "seed": seed})
        return
    table = Table("quantity", g.chip.id, c.chip.id, title=f"break-even: {demand:,.3g} output tokens/day of {model} "
                  f"({isl:.0f} in / {osl:.0f} out), utilisation {utilisation:.0%}")
    table.add_row("output tokens/s per chip", f"{g.out_tps:,.0f}", f"{c.out_tps:,.0f}")
    table.add_row("chips for the demand", f"{be.gpus_needed:,}", f"{be.customs_needed:,}")
    table.add_row(f"$/h per chip (TCO; custom {partner}, with NRE and software over this fleet)",
                  band(be.gpu.hourly.total, "{:.2f}"), band(be.custom.hourly.total, "{:.2f}"))
    table.add_row("$/Mtok output", band(be.gpu.usd_per_mtok_out, "{:.3f}"),
                  band(be.custom.usd_per_mtok_out, "{:.3f}"))
    table.add_row("life TCO per chip $ (custom: no NRE or software)", band(be.gpu_life_cost),
                  band(be.custom_life_cost))
    out.print(table)
    out.print(f"break-even volume: {band(be.volume)} custom chips; break-even time at this demand: "
              f"{band(be.years, '{:,.2f}')} years (inf = never); {samples:,} samples, seed {seed}")


def _fleet_side_json(srv: Any, chips: int, tc: Any, life_cost: Any) -> dict[str, Any]:
    """`breakeven --json`: one side's column (the GPU's or the custom chip's). A break-even that never comes
    (inf in the table) is null."""
    return {"hardware": srv.chip.id, "output_tokens_per_s_per_chip": srv.out_tps, "chips_for_demand": chips,
            "usd_per_hour_per_chip": band_json(tc.hourly.total), "usd_per_mtok_out": band_json(tc.usd_per_mtok_out),
            "life_tco_usd_per_chip": band_json(life_cost)}
