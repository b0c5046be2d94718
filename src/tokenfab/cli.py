"""The `tokenfab` command: parse, call, print. Bad input: one line naming the field, exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from tokenfab import catalog
from tokenfab.units import GiB

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Design and price LLM-inference hardware: predict, calibrate, validate, compare, "
                       "silicon, tco, breakeven.")
hardware_app = typer.Typer(no_args_is_help=True, help="The accelerator catalog.")
model_app = typer.Typer(no_args_is_help=True, help="The model zoo (or any HF config.json).")
app.add_typer(hardware_app, name="hardware")
app.add_typer(model_app, name="model")
# Tables are wide; when printing to a pipe or file keep them readable instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


@hardware_app.command("list")
def hardware_list() -> None:
    """Every accelerator in the catalog, with its headline figures."""
    from tokenfab.hardware import all_chips
    table = Table("id", "name", "family", "bf16 TFLOP/s", "fp8", "fp4", "memory GiB", "TB/s", "scale-up", "TDP W",
                  "$/h")
    for c in sorted(all_chips(), key=lambda c: c.id):
        def tf(p: str, c: Any = c) -> str:
            return f"{c.peak_flops[p] / 1e12:.0f}" if p in c.peak_flops else "-"
        cloud = f"{c.cloud_usd_hr.value:.2f}" if c.cloud_usd_hr else "-"
        table.add_row(c.id, c.name, c.family, tf("bf16") if "bf16" in c.peak_flops else tf("fp16"), tf("fp8"),
                      tf("fp4"), f"{c.mem_bytes / GiB:.0f}", f"{c.mem_bw / 1e12:.2f}",
                      f"{c.scaleup_kind} x{c.scaleup_domain}", f"{c.tdp_w:.0f}" if c.tdp_w else "-", cloud)
    out.print(table)


@hardware_app.command("show")
def hardware_show(hw_id: Annotated[str, typer.Argument(help="catalog id, e.g. h100-sxm")]) -> None:
    """One accelerator's full catalog record, sources included."""
    try:
        rec = catalog.accelerator(hw_id)
    except KeyError as e:
        fail(str(e))
    out.print_json(json.dumps(rec, default=str))


@model_app.command("show")
def model_show(model: Annotated[str, typer.Argument(help="zoo id or path to a config.json")]) -> None:
    """Parameters, weight bytes per precision, KV bytes per token and FLOPs per token."""
    from tokenfab.model import ModelConfigError, load_model
    from tokenfab.units import PRECISION_BYTES
    try:
        m = load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    kind = ("MoE " if m.is_moe else "dense ") + ("MLA" if m.is_mla else
                                                   "MHA" if m.kv_heads == m.heads else
                                                   "MQA" if m.kv_heads == 1 else "GQA")
    table = Table("quantity", "value", title=f"{m.name} ({kind})")
    table.add_row("layers / hidden / heads / kv heads", f"{m.layers} / {m.hidden} / {m.heads} / {m.kv_heads}")
    if m.is_moe:
        table.add_row("experts / top-k / shared", f"{m.experts} / {m.top_k} / {m.shared_experts}")
    table.add_row("total parameters", f"{m.total_params / 1e9:.2f} B")
    table.add_row("active parameters per token", f"{m.active_params / 1e9:.2f} B")
    for p in ("bf16", "fp8", "fp4"):
        table.add_row(f"weight bytes at {p}", f"{m.total_params * PRECISION_BYTES[p] / 1e9:.1f} GB")
    for p in ("bf16", "fp8"):
        table.add_row(f"KV bytes per token at {p}", f"{m.kv_bytes_per_token(p) / 1e3:.1f} kB")
    for ctx in (0, 4096, 32768):
        table.add_row(f"FLOPs per token at context {ctx}", f"{m.flops_per_token(ctx) / 1e9:.1f} GFLOP")
    out.print(table)


def _load_cal(path: str | None):
    from tokenfab.perf.params import load_calibration
    try:
        return load_calibration(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"--calibration {path!r}: cannot read a calibration profile ({e})")


@app.command()
def predict(
    queries: Annotated[Path | None, typer.Option(help="JSONL queries, one per line; '-' = stdin")] = None,
    scenario: Annotated[str | None, typer.Option(
        help="offline|static|server|concurrency|prefill|layer|gemm|memcopy|allreduce")] = None,
    hardware: Annotated[str | None, typer.Option(help="catalog hardware id, or a chip design YAML")] = None,
    model: Annotated[str | None, typer.Option(help="zoo model id or path to config.json")] = None,
    devices: Annotated[int, typer.Option()] = 1,
    tp: Annotated[int | None, typer.Option()] = None,
    pp: Annotated[int | None, typer.Option()] = None,
    ep: Annotated[int | None, typer.Option()] = None,
    precision: Annotated[str | None, typer.Option()] = None,
    kv_precision: Annotated[str | None, typer.Option()] = None,
    engine: Annotated[str, typer.Option()] = "trtllm",
    input_len: Annotated[float | None, typer.Option()] = None,
    output_len: Annotated[float | None, typer.Option()] = None,
    batch: Annotated[int | None, typer.Option()] = None,
    rate: Annotated[float | None, typer.Option(help="server: Poisson arrivals, requests/s (whole system)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="concurrency: requests kept in flight")] = None,
    max_batch: Annotated[int | None, typer.Option()] = None,
    metric: Annotated[str | None, typer.Option()] = None,
    calibration: Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")] = None,
) -> None:
    """Predict metrics for one query (flags) or many (--queries); prints JSON lines."""
    from tokenfab.predict import predict_one
    from tokenfab.queries import parse_query
    cal = _load_cal(calibration)
    if queries is not None:
        if str(queries) == "-":
            _predict_stream(sys.stdin, cal)
            return
        try:
            stream = open(queries)  # noqa: SIM115 - closed below; open errors get their own message
        except OSError as e:
            fail(f"--queries {str(queries)!r}: {e.strerror}")
        with stream:
            _predict_stream(stream, cal)
        return
    given = {k: v for k, v in dict(scenario=scenario, hardware=hardware, model=model, devices=devices, tp=tp,
                                   pp=pp, ep=ep, precision=precision, kv_precision=kv_precision, engine=engine,
                                   input_len=input_len, output_len=output_len, batch=batch, max_batch=max_batch,
                                   metric=metric, rate=rate, concurrency=concurrency).items() if v is not None}
    if "scenario" not in given or "hardware" not in given:
        fail("give --queries FILE, or at least --scenario and --hardware")
    try:
        q = parse_query(given)
    except ValueError as e:
        fail(str(e))
    result = predict_one(q, cal)
    if "error" in result:
        fail(result["error"])
    print(json.dumps(result, sort_keys=True))


def _predict_stream(stream: Any, cal: Any) -> None:
    """One JSON object per query line: the prediction, or the reason it cannot be given."""
    from tokenfab.predict import predict_one
    from tokenfab.queries import read_queries
    for _lineno, qid, q in read_queries(stream):
        result = {"id": qid, "error": q} if isinstance(q, str) else predict_one(q, cal)
        print(json.dumps(result, sort_keys=True))


def _measured(data: Path, all_scenarios: bool = False):
    from tokenfab.calibrate.fit import FIT_SCENARIOS, load_measured
    from tokenfab.queries import SCENARIOS
    try:
        with open(data) as fh:
            return load_measured(fh, SCENARIOS if all_scenarios else FIT_SCENARIOS)
    except OSError as e:
        fail(f"--data {str(data)!r}: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(f"--data {str(data)!r}: malformed JSON at line {e.lineno}: {e.msg}")


@app.command()
def calibrate(
    data: Annotated[Path, typer.Option(help="measured queries (JSONL with 'value')")],
    out_path: Annotated[Path, typer.Option("--out", help="where to write the profile")] = Path("calibration.json"),
) -> None:
    """Fit the efficiency parameters (global, then per hardware family) to measured data."""
    from tokenfab.calibrate import fit_calibration
    points, skipped = _measured(data)
    if not points:
        fail(f"--data {str(data)!r}: no query of a fitted scenario could be planned")
    cal = fit_calibration(points, source=data.name)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    tmp.write_text(json.dumps(cal.to_json(), indent=1, sort_keys=True) + "\n")
    tmp.replace(out_path)  # never leave a half-written profile behind
    out.print(f"fitted {len(points)} measurements ({len(skipped)} skipped); families: "
              f"{', '.join(cal.family) or 'none'}; wrote {out_path}")


@app.command()
def validate(
    data: Annotated[Path, typer.Option(help="measured queries (JSONL with 'value')")],
    as_json: Annotated[bool, typer.Option("--json", help="print the table as JSON")] = False,
    leave_one_hardware_out: Annotated[bool, typer.Option("--leave-one-hardware-out",
                                                         help="refit without each hardware, predict it")] = False,
    calibration: Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")] = None,
) -> None:
    """Error table per scenario x hardware x metric: count, median |err|, p90 |err|, bias."""
    from tokenfab import validate as v
    points, skipped = _measured(data, all_scenarios=True)
    if leave_one_hardware_out:
        with err.status("refitting without each hardware") as status:
            scored = v.score_leave_one_hardware_out(points, lambda hw: status.update(f"refitting without {hw}"))
        mode = "leave-one-hardware-out"
    else:
        scored = v.score_in_sample(points, _load_cal(calibration))
        mode = "shipped calibration" if calibration is None else f"calibration {calibration}"
    rows = v.error_table(scored)
    if as_json:
        print(json.dumps({"mode": mode, "skipped": len(skipped),
                          "rows": [r.__dict__ for r in rows],
                          "predictions": [s.__dict__ for s in scored]}, sort_keys=True))
        return
    table = Table("scenario", "hardware", "metric", "n", "median |err|", "p90 |err|", "bias",
                  title=f"tokenfab validate ({mode}; {len(skipped)} queries not answerable)")
    for r in rows:
        style = "bold" if r.hardware == "all" else None
        table.add_row(r.scenario, r.hardware, r.metric, str(r.count), f"{r.median_abs:.1%}", f"{r.p90_abs:.1%}",
                      f"{r.bias:+.1%}", style=style)
    out.print(table)


@app.command()
def compare(
    model: Annotated[str, typer.Option(help="zoo model id or config.json path")] = "llama-3.1-70b",
    input_len: Annotated[float, typer.Option(help="prompt tokens per request")] = 2048,
    output_len: Annotated[float, typer.Option(help="generated tokens per request")] = 512,
    hardware: Annotated[list[str] | None, typer.Option(help="only these: catalog ids or design YAMLs (repeat)")] = None,
    utilisation: Annotated[float, typer.Option(help="share of hours at full throughput, for $/Mtok")] = 0.7,
    top: Annotated[int, typer.Option(help="rows to show")] = 40,
    calibration: Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")] = None,
) -> None:
    """Rank accelerators that can serve the model (best TP and precision for each), with TCO $/Mtok."""
    from tokenfab.compare import best_option
    from tokenfab.compare import compare as run_compare
    from tokenfab.model import ModelConfigError, load_model
    if input_len <= 0 or output_len <= 0:
        fail("--input-len and --output-len must be positive token counts")
    if not 0 < utilisation <= 1:
        fail(f"--utilisation {utilisation}: allowed 0 < u <= 1")
    try:
        load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    cal = _load_cal(calibration)
    if hardware:
        found = [best_option(_chip(h), model, input_len, output_len, cal) for h in hardware]
        options = sorted((o for o in found if o is not None), key=lambda o: -o.tokens_per_s_per_device)
    else:
        options = run_compare(model, input_len, output_len, cal)
    if not options:
        fail(f"model {model} fits on none of these accelerators with tp <= 8")
    table = Table("#", "hardware", "tp", "precision", "out tok/s/device", "TPOT ms", "batch", "tok/J",
                  "TCO $/Mtok out P50 (P10-P90)", "cloud $/Mtok out",
                  title=f"{model}: {input_len:.0f} in / {output_len:.0f} out, offline max throughput")
    for i, o in enumerate(options[:top], 1):
        cloud = "-" if o.usd_per_mtok is None else f"{o.usd_per_mtok:.2f} ({o.usd_per_mtok_low:.2f}-" \
            f"{o.usd_per_mtok_high:.2f})"
        table.add_row(str(i), o.chip.id, str(o.tp), o.precision, f"{o.tokens_per_s_per_device:,.0f}",
                      f"{o.tpot_ms:.1f}", f"{o.concurrency:.0f}",
                      f"{o.tokens_per_joule:.2f}" if o.chip.energy else "-",
                      _tco_cell(o, input_len, output_len, utilisation), cloud)
    out.print(table)
    out.print(f"TCO $/Mtok: owned hardware at {utilisation:.0%} utilisation (capex over the depreciation life, "
              "power, facility, maintenance; 2,000 samples); cloud $/Mtok: the catalog's $/GPU-hour "
              "(low-high) at full utilisation; tok/J: component energy model, accelerators only.")


def _tco_cell(option: Any, isl: float, osl: float, utilisation: float) -> str:
    """P50 (P10-P90) of TCO $/Mtok for one compare row; '-' when the chip has no price or TDP."""
    from tokenfab.constants import Draws
    from tokenfab.economics import EconomicsError, Serving, token_cost
    power = option.tokens_per_s_per_device / option.tokens_per_joule if option.tokens_per_joule else 0.0
    try:
        tc = token_cost(Serving(option, isl, osl, 0.0, power), Draws(n=2000, seed=0), utilisation)
    except EconomicsError:
        return "-"
    return _band(tc.usd_per_mtok_out, "{:.2f}")


# ---------------------------------------------------------------- custom silicon and economics

def _design(spec: str):
    from tokenfab.silicon import DesignError, resolve_design
    try:
        return resolve_design(spec)
    except DesignError as e:
        fail(str(e))


def _chip(spec: str):
    from tokenfab.silicon import DesignError, resolve_chip
    try:
        return resolve_chip(spec)
    except (KeyError, DesignError) as e:
        fail(str(e))


def _band(x: Any, fmt: str = "{:,.0f}") -> str:
    from tokenfab.constants import percentiles
    p10, p50, p90 = percentiles(x)
    if p10 == p90:
        return fmt.format(p50)
    return f"{fmt.format(p50)} ({fmt.format(p10)}-{fmt.format(p90)})"


def _check_samples(samples: int) -> None:
    if samples < 0 or samples > 1_000_000:
        fail(f"--samples {samples}: allowed 0 (nominal only) to 1,000,000")


@app.command()
def silicon(
    design: Annotated[str | None, typer.Argument(help="design YAML, or a shipped design id")] = None,
    volume: Annotated[float, typer.Option(help="accelerators built, to spread the NRE")] = 100_000,
    yield_model: Annotated[str, typer.Option(help="negative-binomial | murphy | poisson")] = "negative-binomial",
    samples: Annotated[int, typer.Option(help="Monte Carlo samples for the P10-P90 bands")] = 10_000,
    seed: Annotated[int, typer.Option()] = 0,
    check: Annotated[bool, typer.Option("--check", help="leave-one-out area/TDP check on published chips")] = False,
    refit: Annotated[bool, typer.Option("--refit", help="refit the shipped scales on the published chips")] = False,
) -> None:
    """Area, yield, unit cost, NRE and power of a chip design, with P50 (P10-P90) bands."""
    if check or refit:
        _silicon_check(refit)
        return
    if design is None:
        from tokenfab.silicon import shipped_designs
        fail(f"give a design YAML or a shipped design id: {', '.join(sorted(shipped_designs()))}")
    _check_samples(samples)
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
    table = Table("quantity", "nominal", "P50 (P10-P90)", title=f"{dsg.label}: {dsg.node}, {dsg.clock_ghz} GHz, "
                  f"{dsg.cores} cores" + (f" (+{dsg.spare_cores} spare)" if dsg.spare_cores else ""))

    def row(name: str, nom: Any, sampled: Any, fmt: str = "{:,.0f}") -> None:
        table.add_row(name, fmt.format(float(nom)), _band(sampled, fmt))
    for i, (die, die_mc) in enumerate(zip(nominal.dies, mc.dies, strict=True)):
        label = f"{die.kind} die ({die.node}) x{die.count}"
        row(f"{label}: area mm2", die.total, die_mc.total)
        for part in ("logic", "sram", "phy", "d2d", "block"):
            value = getattr(die, part)
            if float(value):
                table.add_row(f"  {part} mm2 (before uncore share)", f"{float(value):,.1f}", "")
        cost, cost_mc = nominal.unit.dies[i], mc.unit.dies[i]
        table.add_row("  dies per wafer", f"{float(cost.dies_per_wafer):,.0f}", "")
        row("  yield", cost.yield_, cost_mc.yield_, "{:.3f}")
        row("  known-good die $", cost.kgd_usd, cost_mc.kgd_usd)
    row("silicon area, all dies mm2", nominal.area, mc.area)
    row("interposer mm2", nominal.interposer, mc.interposer)
    for part in ("silicon", "memory", "packaging", "assembly_loss", "test", "board"):
        row(f"unit cost: {part.replace('_', ' ')} $", getattr(nominal.unit, part), getattr(mc.unit, part))
    row("unit cost (manufacturing) $", nominal.unit.total, mc.unit.total)
    row("NRE $M", nominal.nre / 1e6, mc.nre / 1e6, "{:,.0f}")
    row(f"unit cost incl. NRE at {volume:,.0f} units $", nominal.unit_cost_with_nre, mc.unit_cost_with_nre)
    for part in ("matrix", "vector", "dram", "sram", "links", "static"):
        row(f"power at TDP load: {part} W", getattr(nominal.power, part), getattr(mc.power, part))
    row("TDP estimate W", nominal.power.tdp, mc.power.tdp)
    if dsg.tdp_w:
        table.add_row("TDP (design budget) W", f"{dsg.tdp_w:,.0f}", "")
    out.print(table)
    flops = peak_flops(dsg)
    out.print("peak dense TFLOP/s: " + ", ".join(f"{p} {v / 1e12:,.0f}" for p, v in flops.items())
              + f"; memory {memory_bw(dsg) / 1e12:.2f} TB/s; yield model {yield_model}; "
              f"{samples:,} samples, seed {seed}")


def _silicon_check(refit: bool) -> None:
    from tokenfab.silicon.fit import leave_one_out, median_errors, write_fit
    if refit:
        result = write_fit()
        out.print(f"wrote the fitted scales: {json.dumps({k: v for k, v in result.items() if k != 'provenance'})}")
    rows = leave_one_out()
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
        return serving(chip, model, isl, osl, _load_cal(calibration))
    except EconomicsError as e:
        fail(str(e))


@app.command()
def tco(
    hardware: Annotated[str, typer.Option(help="catalog id or design YAML / shipped design id")],
    model: Annotated[str, typer.Option(help="zoo model id or config.json path")] = "llama-3.1-70b",
    workload: Annotated[str | None, typer.Option(help="traffic preset (when the traffic model is present)")] = None,
    input_len: Annotated[float | None, typer.Option(help="prompt tokens per request")] = None,
    output_len: Annotated[float | None, typer.Option(help="generated tokens per request")] = None,
    utilisation: Annotated[float, typer.Option(help="share of hours at full throughput")] = 0.7,
    volume: Annotated[float, typer.Option(help="designs: units built, to spread the NRE")] = 100_000,
    samples: Annotated[int, typer.Option(help="Monte Carlo samples")] = 10_000,
    seed: Annotated[int, typer.Option()] = 0,
    calibration: Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")] = None,
) -> None:
    """$ per million tokens on owned hardware (TCO), with P10-P90 bands and the cost breakdown."""
    from tokenfab.constants import Draws
    from tokenfab.economics import EconomicsError, token_cost
    isl, osl = _lengths(workload, input_len, output_len)
    _check_samples(samples)
    if not 0 < utilisation <= 1:
        fail(f"--utilisation {utilisation}: allowed 0 < u <= 1")
    chip = _chip(hardware)
    srv = _serving(chip, model, isl, osl, calibration)
    try:
        tc = token_cost(srv, Draws(n=samples or None, seed=seed), utilisation, volume)
    except EconomicsError as e:
        fail(str(e))
    hr = tc.hourly
    table = Table("quantity", "P50 (P10-P90)", "share of $/h",
                  title=f"{chip.id} serving {model}: {isl:.0f} in / {osl:.0f} out, tp {srv.option.tp} "
                        f"{srv.option.precision}, utilisation {utilisation:.0%}")
    total = hr.total
    for name, part in (("accelerator capex", hr.accelerator), ("server + network capex", hr.server_network),
                       ("facility capex", hr.facility), ("power (x PUE)", hr.power), ("maintenance", hr.maintenance)):
        share = float(np.median(np.asarray(part) / np.asarray(total)))
        table.add_row(f"$/h: {name}", _band(part, "{:.3f}"), f"{share:.0%}")
    capex_share = float(np.median(np.asarray(hr.capex) / np.asarray(total)))
    power_share = float(np.median(np.asarray(hr.power) / np.asarray(total)))
    table.add_row("$/h per accelerator (TCO)", _band(total, "{:.2f}"), "100%")
    table.add_row("output tokens/s per accelerator (full load)", f"{srv.out_tps:,.0f}", "")
    table.add_row("accelerator power at full load W", f"{srv.busy_power_w:,.0f}", "")
    table.add_row("$/Mtok output (all cost on output)", _band(tc.usd_per_mtok_out, "{:.3f}"), "")
    table.add_row("$/Mtok input (prefill share)", _band(tc.usd_per_mtok_in, "{:.3f}"), "")
    table.add_row("$/Mtok output (decode share)", _band(tc.usd_per_mtok_out_only, "{:.3f}"), "")
    if tc.cloud_usd_per_mtok:
        lo, typ, hi = tc.cloud_usd_per_mtok
        c = chip.cloud_usd_hr
        table.add_row("cloud rental $/h (catalog)", f"{c.value:.2f} ({c.low:.2f}-{c.high:.2f})", "")
        table.add_row("$/Mtok output on cloud rental", f"{typ:.3f} ({lo:.3f}-{hi:.3f})", "")
    out.print(table)
    out.print(f"capex share {capex_share:.0%}, power share {power_share:.0%}; {samples:,} samples, seed {seed}")


@app.command()
def breakeven(
    design: Annotated[str, typer.Option(help="design YAML or shipped design id")],
    gpu: Annotated[str, typer.Option(help="catalog GPU id to compare against")] = "h100-sxm",
    model: Annotated[str, typer.Option(help="zoo model id or config.json path")] = "llama-3.1-70b",
    demand: Annotated[float, typer.Option(help="output tokens per day to serve")] = 1e12,
    workload: Annotated[str | None, typer.Option(help="traffic preset (when the traffic model is present)")] = None,
    input_len: Annotated[float | None, typer.Option(help="prompt tokens per request")] = None,
    output_len: Annotated[float | None, typer.Option(help="generated tokens per request")] = None,
    utilisation: Annotated[float, typer.Option(help="share of hours at full throughput")] = 0.7,
    samples: Annotated[int, typer.Option(help="Monte Carlo samples")] = 10_000,
    seed: Annotated[int, typer.Option()] = 0,
    calibration: Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")] = None,
) -> None:
    """Volume and time at which a custom design (NRE + unit cost + opex) costs less than a GPU fleet."""
    from tokenfab.constants import Draws
    from tokenfab.economics import EconomicsError, break_even
    from tokenfab.silicon import is_design_ref
    isl, osl = _lengths(workload, input_len, output_len)
    _check_samples(samples)
    if demand <= 0:
        fail(f"--demand {demand}: a positive number of output tokens per day")
    if not 0 < utilisation <= 1:
        fail(f"--utilisation {utilisation}: allowed 0 < u <= 1")
    if not is_design_ref(design):
        fail(f"--design {design!r}: give a design YAML or a shipped design id")
    g = _serving(_chip(gpu), model, isl, osl, calibration)
    c = _serving(_chip(design), model, isl, osl, calibration)
    try:
        be = break_even(g, c, demand, Draws(n=samples or None, seed=seed), utilisation)
    except EconomicsError as e:
        fail(str(e))
    table = Table("quantity", g.chip.id, c.chip.id, title=f"break-even: {demand:,.3g} output tokens/day of {model} "
                  f"({isl:.0f} in / {osl:.0f} out), utilisation {utilisation:.0%}")
    table.add_row("output tokens/s per chip", f"{g.out_tps:,.0f}", f"{c.out_tps:,.0f}")
    table.add_row("chips for the demand", f"{be.gpus_needed:,}", f"{be.customs_needed:,}")
    table.add_row("$/h per chip (TCO; custom with NRE over this fleet)", _band(be.gpu.hourly.total, "{:.2f}"),
                  _band(be.custom.hourly.total, "{:.2f}"))
    table.add_row("$/Mtok output", _band(be.gpu.usd_per_mtok_out, "{:.3f}"),
                  _band(be.custom.usd_per_mtok_out, "{:.3f}"))
    table.add_row("life TCO per chip $ (custom: no NRE)", _band(be.gpu_life_cost), _band(be.custom_life_cost))
    out.print(table)
    out.print(f"break-even volume: {_band(be.volume)} custom chips; break-even time at this demand: "
              f"{_band(be.years, '{:,.2f}')} years (inf = never); {samples:,} samples, seed {seed}")


# design and results commands live in their own module; importing it registers them on `app`
from tokenfab import cli_design as _cli_design  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    app()
