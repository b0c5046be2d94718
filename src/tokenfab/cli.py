"""The `tokenfab` command: parse, call, print. Bad input: one line naming the field, exit code 2."""

from __future__ import annotations

import functools
import gc
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab import catalog
from tokenfab.cli_design import design, results
from tokenfab.cli_io import JsonOpt, check_output, err, fail, out, print_json
from tokenfab.units import GiB


class _App(typer.Typer):
    """Typer, with the process's start-up run without the cyclic garbage collector, and NumPy's BLAS on one
    thread.

    Start-up (the command tree, the option parsers, the modules they load) builds only objects that live
    until exit, and collecting them again and again took ~10% of a short command. So `tokenfab` turns the
    collector off as the process starts, and each command turns it back on as its own work begins,
    after freezing what start-up built (full collections then skip it). The commands compute element-wise;
    a BLAS thread pool only costs start-up time (a user's own OPENBLAS_NUM_THREADS is kept)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before NumPy is first imported
        gc.disable()
        try:
            return super().__call__(*args, **kwargs)
        finally:
            gc.enable()

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            register(_collecting(f))
            return f
        return decorator


def _collecting(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():   # start-up is over (in-process callers, such as tests, never turned it off)
            gc.freeze()
            gc.enable()
        for name, value in kwargs.items():   # a number flag given as nan or inf means nothing to any command
            if isinstance(value, float) and not math.isfinite(value):
                fail(f"--{name.replace('_', '-')} {value}: a finite number is required")
        return command(*args, **kwargs)
    return run


app = _App(add_completion=False, no_args_is_help=True,
           help="Design and price LLM-inference hardware: predict, calibrate, validate, compare, "
                "silicon, tco, breakeven, simulate, design, fleet.")
hardware_app = _App(no_args_is_help=True, help="The accelerator catalog.")
model_app = _App(no_args_is_help=True, help="The model zoo (or any HF config.json).")
def _version(show: bool) -> None:
    if show:
        from tokenfab import __version__
        print(f"tokenfab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Design and price LLM-inference hardware: predict, calibrate, validate, compare, silicon, tco, breakeven,
    simulate, design, fleet."""


app.add_typer(hardware_app, name="hardware")
app.add_typer(model_app, name="model")

# options that several commands share, declared once (each takes its name from the parameter)
ModelOpt = Annotated[str, typer.Option(help="zoo model id or config.json path")]
CalibrationOpt = Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")]
WorkloadOpt = Annotated[str | None, typer.Option(help="traffic preset: its request-weighted mean lengths")]
InputLenOpt = Annotated[float | None, typer.Option(help="prompt tokens per request")]
OutputLenOpt = Annotated[float | None, typer.Option(help="generated tokens per request")]
UtilisationOpt = Annotated[float, typer.Option(help="share of hours at full throughput")]
SamplesOpt = Annotated[int, typer.Option(help="Monte Carlo samples")]
SeedOpt = Annotated[int, typer.Option(help="seed of the Monte Carlo draws over uncertain constants")]
# and `--json`, which every answering command takes: JsonOpt, from cli_io (the design commands share it)


@hardware_app.command("list")
def hardware_list(as_json: JsonOpt = False) -> None:
    """Every accelerator in the catalog, with its headline figures."""
    from rich.table import Table

    from tokenfab.hardware import all_chips
    if as_json:
        print_json({"accelerators": [_chip_json(c) for c in sorted(all_chips(), key=lambda c: c.id)]})
        return
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


def _chip_json(c: Any) -> dict[str, Any]:
    """`hardware list --json`: one accelerator's headline figures, in the units their keys name."""
    return {"id": c.id, "name": c.name, "family": c.family,
            "peak_tflops": {p: v / 1e12 for p, v in c.peak_flops.items()},
            "memory_gib": c.mem_bytes / GiB, "memory_tb_per_s": c.mem_bw / 1e12,
            "scaleup_kind": c.scaleup_kind, "scaleup_domain": c.scaleup_domain, "tdp_w": c.tdp_w or None,
            "cloud_usd_per_hour": c.cloud_usd_hr.value if c.cloud_usd_hr else None}


@hardware_app.command("show")
def hardware_show(hw_id: Annotated[str, typer.Argument(help="catalog id, e.g. h100-sxm")],
                  as_json: JsonOpt = False) -> None:
    """One accelerator's full catalog record, sources included (always JSON; --json: one strict line)."""
    try:
        rec = catalog.accelerator(hw_id)
    except KeyError as e:
        fail(str(e))
    if as_json:
        print_json(rec)
        return
    out.print_json(json.dumps(rec, default=str))


def _model_kind(m: Any) -> tuple[str, str]:
    """(dense|MoE, its attention: MLA, MHA, MQA or GQA)."""
    attention = "MLA" if m.is_mla else "MHA" if m.kv_heads == m.heads else "MQA" if m.kv_heads == 1 else "GQA"
    return ("MoE" if m.is_moe else "dense"), attention


@model_app.command("list")
def model_list(as_json: JsonOpt = False) -> None:
    """Every model in the zoo: kind, layers, total and active parameters (any HF config.json works too)."""
    from rich.table import Table

    from tokenfab.catalog import model_ids
    from tokenfab.model import load_model
    models = [(mid, load_model(mid)) for mid in model_ids()]
    if as_json:
        print_json({"models": [_model_entry(mid, m) for mid, m in models]})
        return
    table = Table("id", "kind", "layers", "total params", "active params", title="model zoo")
    for mid, m in models:
        kind = ("MoE" if m.is_moe else "dense") + (", MLA" if m.is_mla else "")
        table.add_row(mid, kind, str(m.layers), f"{m.total_params / 1e9:,.1f} B", f"{m.active_params / 1e9:,.1f} B")
    out.print(table)


def _model_entry(mid: str, m: Any) -> dict[str, Any]:
    """`model list --json`: one zoo model's row, parameters as counts."""
    kind, attention = _model_kind(m)
    return {"id": mid, "kind": kind, "attention": attention, "layers": m.layers, "total_params": m.total_params,
            "active_params": m.active_params}


# the contexts at which `model show` gives FLOPs per token
FLOPS_CONTEXTS = (0, 4096, 32768)


@model_app.command("show")
def model_show(model: Annotated[str, typer.Argument(help="zoo id or path to a config.json")],
               as_json: JsonOpt = False) -> None:
    """Parameters, weight bytes per precision, KV bytes per token and FLOPs per token."""
    from rich.table import Table

    from tokenfab.model import ModelConfigError, load_model
    from tokenfab.units import PRECISION_BYTES
    try:
        m = load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    if as_json:
        print_json(_model_json(m))
        return
    kind = " ".join(_model_kind(m))
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
    for ctx in FLOPS_CONTEXTS:
        table.add_row(f"FLOPs per token at context {ctx}", f"{m.flops_per_token(ctx) / 1e9:.1f} GFLOP")
    out.print(table)


def _model_json(m: Any) -> dict[str, Any]:
    """`model show --json`: the table's figures in bytes and FLOPs (not GB and GFLOP), keyed by precision or
    context length."""
    from tokenfab.units import PRECISION_BYTES
    kind, attention = _model_kind(m)
    shape: dict[str, Any] = {"layers": m.layers, "hidden": m.hidden, "heads": m.heads, "kv_heads": m.kv_heads}
    if m.is_moe:
        shape.update(experts=m.experts, top_k=m.top_k, shared_experts=m.shared_experts)
    return {"name": m.name, "kind": kind, "attention": attention, **shape, "total_params": m.total_params,
            "active_params": m.active_params,
            "weight_bytes": {p: m.total_params * PRECISION_BYTES[p] for p in ("bf16", "fp8", "fp4")},
            "kv_bytes_per_token": {p: m.kv_bytes_per_token(p) for p in ("bf16", "fp8")},
            "flops_per_token_by_context": {str(ctx): m.flops_per_token(ctx) for ctx in FLOPS_CONTEXTS}}


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
        help="offline|static|server|concurrency|capacity|prefill|layer|gemm|memcopy|allreduce")] = None,
    hardware: Annotated[str | None, typer.Option(help="catalog hardware id, or a chip design YAML")] = None,
    model: Annotated[str | None, typer.Option(help="zoo model id or path to config.json")] = None,
    devices: Annotated[int, typer.Option(help="chips in all, every replica together")] = 1,
    tp: Annotated[int | None, typer.Option(help="tensor-parallel size of one replica (attention and dense layers)")]
    = None,
    pp: Annotated[int | None, typer.Option(help="pipeline-parallel size of one replica")] = None,
    ep: Annotated[int | None, typer.Option(help="expert-parallel size; ep > tp runs data-parallel attention")] = None,
    precision: Annotated[str | None, typer.Option(
        help="weight and activation precision: fp32, bf16, fp16, fp8, int8, fp6, fp4, int4 "
             "(default: the checkpoint's)")] = None,
    kv_precision: Annotated[str | None, typer.Option(help="KV-cache precision (default: the engine's choice)")] = None,
    engine: Annotated[str, typer.Option(
        help="engine tag, parsed: trtllm-0.20, sglang-0.5.2, vllm-0.9.1, tgi, ... (a '-pd-1xTP4+2xTP4' tail is a "
             "P/D layout)")] = "trtllm",
    input_len: Annotated[float | None, typer.Option(help="prompt tokens per request")] = None,
    output_len: Annotated[float | None, typer.Option(help="generated tokens per request")] = None,
    batch: Annotated[int | None, typer.Option(help="static/prefill/layer: sequences in the batch")] = None,
    rate: Annotated[float | None, typer.Option(help="server: Poisson arrivals, requests/s (whole system)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="concurrency: requests kept in flight")] = None,
    max_batch: Annotated[int | None, typer.Option(
        help="sequences in flight per replica (default: the engine preset's, or a tuned server's for capacity)")]
    = None,
    metric: Annotated[str | None, typer.Option(help="the one metric to print (default: every predicted metric)")]
    = None,
    mtp: Annotated[int | None, typer.Option(help="speculative draft tokens per decode step (MTP models)")] = None,
    accept: Annotated[float | None, typer.Option(help="tokens emitted per decode step (default: published "
                                                 "acceptance for the model and depth)")] = None,
    power_cap_w: Annotated[float | None, typer.Option(help="power limit per accelerator, W (MaxQ)")] = None,
    power_scope: Annotated[str | None, typer.Option(help="accelerator|server|facility: what avg_power_w and "
                                                    "joules_per_output_token cover")] = None,
    budget_s: Annotated[float, typer.Option(help="seconds a query may take before it is answered with an "
                                            "error (the batch goes on)")] = 300.0,
    slo: Annotated[str | None, typer.Option(help="capacity: latency limits in ms, e.g. "
                                            "ttft_ms_p99=2000,tpot_ms_p99=200 (also e2e_ms_pNN)")] = None,
    calibration: CalibrationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict metrics for one query (flags) or many (--queries). Always prints JSON, with or without --json:
    one object per query, one line each (a single query: exactly one object)."""
    from tokenfab.predict import predict_one
    from tokenfab.queries import parse_query
    del as_json   # the answer is JSON either way; the flag is taken as every answering command takes it
    cal = _load_cal(calibration)
    if queries is not None:
        if not budget_s > 0:
            fail(f"--budget-s {budget_s:g}: a positive number of seconds")
        if str(queries) == "-":
            _predict_stream(sys.stdin.buffer, cal, budget_s)
            return
        try:
            stream = open(queries, "rb")  # noqa: SIM115 - closed below; each line is decoded on its own
        except OSError as e:
            fail(f"--queries {str(queries)!r}: {e.strerror}")
        with stream:
            _predict_stream(stream, cal, budget_s)
        return
    given = {k: v for k, v in dict(scenario=scenario, hardware=hardware, model=model, devices=devices, tp=tp,
                                   pp=pp, ep=ep, precision=precision, kv_precision=kv_precision, engine=engine,
                                   input_len=input_len, output_len=output_len, batch=batch, max_batch=max_batch,
                                   metric=metric, rate=rate, concurrency=concurrency, mtp=mtp,
                                   accept=accept, power_cap_w=power_cap_w,
                                   power_scope=power_scope).items() if v is not None}
    if "scenario" not in given or "hardware" not in given:
        fail("give --queries FILE, or at least --scenario and --hardware")
    if slo is not None:
        given["slo"] = _parse_slo(slo)
    try:
        q = parse_query(given)
    except ValueError as e:
        fail(str(e))
    result = predict_one(q, cal, budget_s)
    if "error" in result:
        fail(result["error"])
    print(_json_line(result))


def _parse_slo(text: str) -> dict[str, float]:
    """--slo 'ttft_ms_p99=2000,tpot_ms_p99=200' as the query's `slo` object (the query checks the keys)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq:
            fail(f"--slo {part!r}: write LIMIT=MILLISECONDS, e.g. ttft_ms_p99=2000")
    return out


def _predict_stream(stream: Any, cal: Any, budget_s: float) -> None:
    """One JSON object per query line: the prediction, or the reason it cannot be given."""
    from tokenfab.predict import predict_many
    from tokenfab.queries import read_queries
    rows = list(read_queries(stream))
    answers = iter(predict_many([q for _ln, _id, q in rows if not isinstance(q, str)], cal, budget_s=budget_s))
    for _lineno, qid, q in rows:
        result = {"id": qid, "error": q} if isinstance(q, str) else next(answers)
        print(_json_line(result))


def _json_line(result: dict[str, Any]) -> str:
    """Strict JSON (no NaN or Infinity, which JSON readers refuse): a non-finite answer becomes its error."""
    try:
        return json.dumps(result, sort_keys=True, allow_nan=False)
    except ValueError:
        return json.dumps({"id": result.get("id"), "error": "an answer was not a finite number"}, sort_keys=True)


def _measured(files: list[Path], all_scenarios: bool = False, chips: Any = None, flag: str = "--data"):
    """The measured queries of every file, planned; one line naming the file on a bad one."""
    from tokenfab.calibrate.fit import FIT_SCENARIOS, load_measured
    from tokenfab.queries import SCENARIOS
    points, skipped = [], {}
    for data in files:
        try:
            with open(data) as fh:
                got, missed = load_measured(fh, SCENARIOS if all_scenarios else FIT_SCENARIOS, chips=chips)
        except OSError as e:
            fail(f"{flag} {str(data)!r}: {e.strerror}")
        except json.JSONDecodeError as e:
            fail(f"{flag} {str(data)!r}: malformed JSON at line {e.lineno}: {e.msg}")
        points += got
        skipped.update(missed)
    return points, skipped


@app.command()
def calibrate(
    data: Annotated[list[Path] | None, typer.Option(help="measured queries (JSONL with 'value') to fit; repeat to "
                                                    "fit several files together")] = None,
    device: Annotated[str | None, typer.Option(help="measure this machine instead: cuda or cpu (needs PyTorch: "
                                               "the gpu extra)")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="where to write the profile "
                                                  "(default: calibration.json, or profile.json with --device)")] = None,
    steps: Annotated[Path | None, typer.Option(help="with --device: also write the measured step times (JSONL "
                                               "query rows, for validate --data)")] = None,
    hardware: Annotated[str | None, typer.Option(help="with --device cuda: catalog id of the GPU, when its name "
                                                 "is not recognised")] = None,
    model: Annotated[str | None, typer.Option(help="with --device: Llama-architecture model to time (default: "
                                              "llama-3.1-8b on cuda, llama-tiny on cpu)")] = None,
    moe_data: Annotated[list[Path] | None, typer.Option(help="large-MoE serving measurements (JSONL) for the MoE "
                                                        "stage, fitted after --data")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the efficiency parameters to measured data, or measure this machine's GPU/CPU into a profile."""
    if (data is None) == (device is None):
        fail("give --data FILE (fit measurements) or --device cuda|cpu (measure this machine), not both")
    if device is not None:
        _calibrate_device(device, out_path or Path("profile.json"), steps, hardware, model, as_json)
        return
    for flag, value in (("--steps", steps), ("--hardware", hardware), ("--model", model)):
        if value is not None:
            fail(f"{flag} applies to --device (measuring this machine), not to --data")
    from tokenfab.calibrate import fit_calibration
    out_path = out_path or Path("calibration.json")
    points, skipped = _measured(data)
    if not points:
        fail(f"--data {', '.join(map(str, data))}: no query of a fitted scenario could be planned")
    cal = fit_calibration(points, source=" + ".join(str(d) for d in data))
    if moe_data:
        from tokenfab.calibrate.moe_fit import MOE_FIT_SCENARIOS, fit_moe_stage
        moe_points, _ = _measured(moe_data, all_scenarios=True, flag="--moe-data")
        cal = fit_moe_stage([p for p in moe_points if p.scenario in MOE_FIT_SCENARIOS], cal)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    tmp.write_text(json.dumps(cal.to_json(), indent=1, sort_keys=True) + "\n")
    tmp.replace(out_path)  # never leave a half-written profile behind
    if as_json:
        print_json({"points_fitted": len(points), "skipped": len(skipped), "families": list(cal.family),
                    "data": [str(d) for d in data], "moe_data": [str(d) for d in moe_data or []],
                    "out": str(out_path)})
        return
    out.print(f"fitted {len(points)} measurements ({len(skipped)} skipped); families: "
              f"{', '.join(cal.family) or 'none'}; wrote {out_path}")


def _calibrate_device(device: str, out_path: Path, steps: Path | None, hardware: str | None,
                      model: str | None, as_json: bool = False) -> None:
    """Measure, fit on everything measured, write the profile (and the step rows) atomically."""
    from tokenfab.calibrate.profile import (
        check_writable,
        fit_device,
        profile_json,
        write_json_atomic,
        write_jsonl_atomic,
    )
    from tokenfab.calibrate.runner import measure
    from tokenfab.calibrate.torchenv import DeviceError
    from tokenfab.perf.params import shipped_calibration
    for flag, path in (("--out", out_path), ("--steps", steps)):
        if path is not None:
            try:
                check_writable(path)
            except OSError as e:
                fail(f"{flag} {str(path)!r}: cannot write there ({e})")
    try:
        with err.status(f"calibrating {device}") as status:
            run = measure(device, hardware, model, progress=lambda what: status.update(f"{device}: {what}"))
            status.update(f"{device}: fitting")
            cal = fit_device(run.microbench, run.steps, run.chip, run.spec, shipped_calibration(), run.chip_record,
                             run.provenance)
    except DeviceError as e:
        fail(str(e))
    except RuntimeError as e:  # a kernel or allocation failure: say which, in one line
        fail(f"--device {device}: measurement failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    write_json_atomic(out_path, profile_json(cal, run.microbench))
    if steps is not None:
        write_jsonl_atomic(steps, run.steps)
    fitted = cal.hardware[run.chip.id]
    if as_json:
        print_json({"device": device, "hardware": run.chip.id, "model": run.model,
                    "microbenchmarks": len(run.microbench.rows), "step_times": len(run.steps),
                    "gemm_eff": fitted["gemm_eff"], "mem_eff": fitted["mem_eff"], "attn_eff": fitted["attn_eff"],
                    "t_step_s": fitted["t_step"], "t_layer_s": fitted["t_layer"], "out": str(out_path),
                    "steps": None if steps is None else str(steps)})
        return
    out.print(f"{run.chip.name}: {len(run.microbench.rows)} microbenchmarks, {len(run.steps)} step times of "
              f"{run.model}; gemm_eff {fitted['gemm_eff']:.2f}, mem_eff {fitted['mem_eff']:.2f}, attn_eff "
              f"{fitted['attn_eff']:.2f}, t_step {fitted['t_step'] * 1e6:.0f} us, t_layer "
              f"{fitted['t_layer'] * 1e6:.0f} us; wrote {out_path}" + (f" and {steps}" if steps else ""))


@app.command()
def validate(
    data: Annotated[list[Path], typer.Option(help="measured queries (JSONL with 'value') to score; repeatable")],
    as_json: JsonOpt = False,
    leave_one_hardware_out: Annotated[bool, typer.Option("--leave-one-hardware-out",
                                                         help="refit without each hardware, predict it")] = False,
    fit_extra: Annotated[list[Path] | None, typer.Option(
        help="with --leave-one-hardware-out: more measurements the refits fit on (the held-out hardware's "
             "excepted) but that are not scored, as the shipped fit does with our own GPU run; repeatable")] = None,
    calibration: CalibrationOpt = None,
) -> None:
    """Error table per scenario x hardware x metric: count, median |err|, p90 |err|, bias."""
    from rich.table import Table

    from tokenfab import validate as v
    if fit_extra and not leave_one_hardware_out:
        fail("--fit-extra applies to --leave-one-hardware-out (the shipped fit already holds what it was fitted on)")
    cal = _load_cal(calibration)
    points, skipped = _measured(data, all_scenarios=True, chips=cal.extra_chips())
    if leave_one_hardware_out:
        extra = _measured(fit_extra, flag="--fit-extra")[0] if fit_extra else []
        with err.status("refitting without each hardware") as status:
            scored = v.score_leave_one_hardware_out(points, lambda hw: status.update(f"refitting without {hw}"),
                                                    extra)
        mode = "leave-one-hardware-out"
    else:
        scored = v.score_in_sample(points, cal)
        mode = "shipped calibration" if calibration is None else f"calibration {calibration}"
    rows = v.error_table(scored)
    coverage = v.band_coverage(scored, held_out=leave_one_hardware_out)
    if as_json:
        print_json({"mode": mode, "skipped": len(skipped), "rows": [r.__dict__ for r in rows],
                    "band_coverage": coverage, "predictions": [s.__dict__ for s in scored]})
        return
    table = Table("scenario", "hardware", "metric", "n", "median |err|", "p90 |err|", "bias",
                  title=f"tokenfab validate ({mode}; {len(skipped)} queries not answerable)")
    for r in rows:
        style = "bold" if r.hardware == "all" else None
        table.add_row(r.scenario, r.hardware, r.metric, str(r.count), f"{r.median_abs:.1%}", f"{r.p90_abs:.1%}",
                      f"{r.bias:+.1%}", style=style)
    out.print(table)
    how = "nested leave-one-hardware-out" if leave_one_hardware_out else "shipped bands, in sample"
    for group, c in sorted(coverage.items()):
        out.print(f"P10-P90 band coverage, {group} rows: {c['coverage']:.0%} of {c['n']} ({how}; target 70-90%)")


@app.command()
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
    cal = _load_cal(calibration)
    if hardware:
        found = [best_option(_chip(h), model, input_len, output_len, cal) for h in hardware]
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
                      "-" if tco is None else _band(tco, "{:.2f}"), cloud)
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
            "tco_usd_per_mtok_out": None if tco is None else _band_json(tco), "cloud_usd_per_mtok_out": cloud}


# ---------------------------------------------------------------- custom silicon and economics

def _design(spec: str):
    from tokenfab.silicon import DesignError, resolve_design
    try:
        return resolve_design(spec)
    except DesignError as e:
        fail(str(e))


def _chip(spec: str):
    if spec in catalog.accelerators():   # a catalog id needs none of the silicon model
        from tokenfab.hardware import load_chip
        return load_chip(spec)
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


def _band_json(x: Any, nominal: Any = None) -> dict[str, float]:
    """A sampled figure as --json gives it: {"p10", "p50", "p90"} (and "nominal" where the table shows one),
    the numbers `_band` formats."""
    from tokenfab.constants import percentiles
    band = dict(zip(("p10", "p50", "p90"), percentiles(x), strict=True))
    return band if nominal is None else {"nominal": float(nominal), **band}


def _check_samples(samples: int) -> None:
    if samples < 0 or samples > 1_000_000:
        fail(f"--samples {samples}: allowed 0 (nominal only) to 1,000,000")


def _check_utilisation(utilisation: float) -> None:
    if not 0 < utilisation <= 1:
        fail(f"--utilisation {utilisation}: allowed 0 < u <= 1")


# the parts `silicon` breaks each figure into (its table and its JSON)
UNIT_COST_PARTS = ("silicon", "memory", "packaging", "assembly_loss", "test", "board")
POWER_PARTS = ("matrix", "vector", "dram", "sram", "links", "static")
DIE_AREA_PARTS = ("logic", "sram", "phy", "d2d", "block")


@app.command()
def silicon(
    design: Annotated[str | None, typer.Argument(help="design YAML, or a shipped design id")] = None,
    volume: Annotated[float, typer.Option(help="accelerators built, to spread the NRE")] = 100_000,
    yield_model: Annotated[str, typer.Option(help="negative-binomial | murphy | poisson")] = "negative-binomial",
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
    if as_json:
        print_json({"design": dsg.label, "node": dsg.node, "clock_ghz": dsg.clock_ghz, "cores": dsg.cores,
                    "spare_cores": dsg.spare_cores, "volume": volume, "yield_model": yield_model,
                    "samples": samples, "seed": seed, **_silicon_json(dsg, nominal, mc)})
        return
    table = Table("quantity", "nominal", "P50 (P10-P90)", title=f"{dsg.label}: {dsg.node}, {dsg.clock_ghz} GHz, "
                  f"{dsg.cores} cores" + (f" (+{dsg.spare_cores} spare)" if dsg.spare_cores else ""))

    def row(name: str, nom: Any, sampled: Any, fmt: str = "{:,.0f}") -> None:
        table.add_row(name, fmt.format(float(nom)), _band(sampled, fmt))
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
                     "area_mm2": _band_json(die_mc.total, die.total),
                     "parts_mm2_before_uncore": {p: float(getattr(die, p)) for p in DIE_AREA_PARTS
                                                 if float(getattr(die, p))},
                     "dies_per_wafer": float(cost.dies_per_wafer), "yield": _band_json(cost_mc.yield_, cost.yield_),
                     "known_good_die_usd": _band_json(cost_mc.kgd_usd, cost.kgd_usd)})
    return {"dies": dies, "area_mm2": _band_json(mc.area, nominal.area),
            "interposer_mm2": _band_json(mc.interposer, nominal.interposer),
            "unit_cost_usd": {p: _band_json(getattr(mc.unit, p), getattr(nominal.unit, p)) for p in UNIT_COST_PARTS},
            "unit_cost_total_usd": _band_json(mc.unit.total, nominal.unit.total),
            "nre_usd": _band_json(mc.nre, nominal.nre),
            "unit_cost_with_nre_usd": _band_json(mc.unit_cost_with_nre, nominal.unit_cost_with_nre),
            "power_at_tdp_load_w": {p: _band_json(getattr(mc.power, p), getattr(nominal.power, p))
                                    for p in POWER_PARTS},
            "tdp_estimate_w": _band_json(mc.power.tdp, nominal.power.tdp), "tdp_budget_w": dsg.tdp_w or None,
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
    _check_samples(samples)
    _check_utilisation(utilisation)
    if not volume > 0:
        fail(f"--volume {volume:g}: a positive number of accelerators is required")
    chip = _chip(hardware)
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
        "usd_per_mtok_out": _band_json(tc.usd_per_mtok_out), "usd_per_mtok_in": _band_json(tc.usd_per_mtok_in),
        "usd_per_mtok_out_only": _band_json(tc.usd_per_mtok_out_only), "usd_per_hour": _band_json(hr.total),
        "usd_per_hour_parts": {k: _band_json(getattr(hr, k)) for k in
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


@app.command()
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
                                         "NRE share) or in-house (at cost, all of the NRE)")] = "broadcom-style",
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
    _check_samples(samples)
    if demand <= 0:
        fail(f"--demand {demand}: a positive number of output tokens per day")
    _check_utilisation(utilisation)
    if not is_design_ref(design):
        fail(f"--design {design!r}: give a design YAML or a shipped design id")
    g = _serving(_chip(gpu), model, isl, osl, calibration)
    c = _serving(_chip(design), model, isl, osl, calibration)
    try:
        be = break_even(g, c, demand, Draws(n=samples or None, seed=seed), utilisation, terms=terms)
    except EconomicsError as e:
        fail(str(e))
    if as_json:
        print_json({"model": model, "demand_output_tokens_per_day": demand, "input_len": isl, "output_len": osl,
                    "utilisation": utilisation, "partner": partner, "generation": generation,
                    "gpu": _fleet_side_json(g, be.gpus_needed, be.gpu, be.gpu_life_cost),
                    "custom": _fleet_side_json(c, be.customs_needed, be.custom, be.custom_life_cost),
                    "break_even_volume_chips": _band_json(be.volume), "break_even_years": _band_json(be.years),
                    "samples": samples, "seed": seed})
        return
    table = Table("quantity", g.chip.id, c.chip.id, title=f"break-even: {demand:,.3g} output tokens/day of {model} "
                  f"({isl:.0f} in / {osl:.0f} out), utilisation {utilisation:.0%}")
    table.add_row("output tokens/s per chip", f"{g.out_tps:,.0f}", f"{c.out_tps:,.0f}")
    table.add_row("chips for the demand", f"{be.gpus_needed:,}", f"{be.customs_needed:,}")
    table.add_row(f"$/h per chip (TCO; custom {partner}, with NRE and software over this fleet)",
                  _band(be.gpu.hourly.total, "{:.2f}"), _band(be.custom.hourly.total, "{:.2f}"))
    table.add_row("$/Mtok output", _band(be.gpu.usd_per_mtok_out, "{:.3f}"),
                  _band(be.custom.usd_per_mtok_out, "{:.3f}"))
    table.add_row("life TCO per chip $ (custom: no NRE or software)", _band(be.gpu_life_cost),
                  _band(be.custom_life_cost))
    out.print(table)
    out.print(f"break-even volume: {_band(be.volume)} custom chips; break-even time at this demand: "
              f"{_band(be.years, '{:,.2f}')} years (inf = never); {samples:,} samples, seed {seed}")


def _fleet_side_json(srv: Any, chips: int, tc: Any, life_cost: Any) -> dict[str, Any]:
    """`breakeven --json`: one side's column (the GPU's or the custom chip's). A break-even that never comes
    (inf in the table) is null."""
    return {"hardware": srv.chip.id, "output_tokens_per_s_per_chip": srv.out_tps, "chips_for_demand": chips,
            "usd_per_hour_per_chip": _band_json(tc.hourly.total), "usd_per_mtok_out": _band_json(tc.usd_per_mtok_out),
            "life_tco_usd_per_chip": _band_json(life_cost)}


@app.command()
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



@app.command()
def simulate(
    model: Annotated[str, typer.Option(help="zoo model id or config.json path")],
    hardware: Annotated[str, typer.Option(help="catalog id or design YAML / shipped design id")],
    devices: Annotated[int | None, typer.Option(help="chips in all (default: one replica)")] = None,
    tp: Annotated[int, typer.Option(help="tensor-parallel size of one replica")] = 1,
    pp: Annotated[int, typer.Option(help="pipeline-parallel size of one replica")] = 1,
    precision: Annotated[str, typer.Option(help="weight and activation precision")] = "bf16",
    kv_precision: Annotated[str | None, typer.Option(help="KV-cache precision (default: as precision)")] = None,
    engine: Annotated[str, typer.Option(help="engine preset: trtllm, vllm, tgi")] = "vllm",
    max_batch: Annotated[int | None, typer.Option(help="sequences in flight per replica")] = None,
    max_num_tokens: Annotated[int | None, typer.Option(help="token budget per step (chunked prefill)")] = None,
    workload: Annotated[str | None, typer.Option(
        help="traffic: preset (chat, code, rag, reasoning, summarisation, agentic), workload YAML, or a trace "
             "(Azure .csv, BurstGPT .csv, Mooncake .jsonl)")] = None,
    input_len: Annotated[int | None, typer.Option(help="fixed prompt tokens (instead of --workload)")] = None,
    output_len: Annotated[int | None, typer.Option(help="fixed output tokens (instead of --workload)")] = None,
    rate: Annotated[float | None, typer.Option(help="Poisson arrivals, requests (sessions)/s for the cluster")] = None,
    concurrency: Annotated[int | None, typer.Option(help="closed loop: requests kept in flight")] = None,
    requests: Annotated[int, typer.Option(help="requests to simulate (a trace: all its rows)")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed of the generated traffic")] = 0,
    disaggregate: Annotated[str | None, typer.Option(help="P:D prefill and decode replica pools")] = None,
    router: Annotated[str, typer.Option(
        help="round-robin | least-outstanding | prefix-affinity")] = "least-outstanding",
    preemption: Annotated[str, typer.Option(help="recompute | swap (vLLM-style engines)")] = "recompute",
    prefix_caching: Annotated[bool, typer.Option(help="reuse cached prompt prefixes")] = True,
    ttft_slo: Annotated[float | None, typer.Option(help="TTFT target, ms (needs --slo-percentile)")] = None,
    tpot_slo: Annotated[float | None, typer.Option(help="TPOT target, ms (needs --slo-percentile)")] = None,
    slo_percentile: Annotated[float | None, typer.Option(help="percentile the SLO holds at, e.g. 99")] = None,
    records: Annotated[Path | None, typer.Option(help="write per-request records to this Parquet file")] = None,
    timeline: Annotated[Path | None, typer.Option(help="write a Chrome/Perfetto trace of request spans")] = None,
    calibration: CalibrationOpt = None,
    band: Annotated[bool, typer.Option(
        "--band", help="also rerun with every step faster and slower by the step model's held-out error "
                       "(P90, P10) and report each latency's band")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve traffic on a cluster of replicas with the discrete-event simulator: latency, goodput, energy."""
    from tokenfab.deployment import Deployment
    from tokenfab.model import ModelConfigError, load_model
    from tokenfab.serve import runner
    check_output("--records", records)
    check_output("--timeline", timeline)
    try:
        spec = load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    chip = _chip(hardware)
    dep = Deployment(tp=tp, pp=pp, weight_precision=precision, act_precision=precision,
                     kv_precision=kv_precision or precision, engine=engine, max_batch=max_batch,
                     max_num_tokens=max_num_tokens)
    params = _load_cal(calibration).for_chip(chip)

    def ms(v: float | None) -> float | None:
        return None if v is None else v / 1e3
    def load() -> Any:   # the same stream each time it is built (seeded; a trace is reread)
        return runner.traffic(workload, input_len, output_len, rate, concurrency, requests, seed,
                              (ms(ttft_slo), ms(tpot_slo), slo_percentile))
    try:
        traffic = load()
        replica_pools = runner.pools(devices, dep, disaggregate, router)
        with _progress_bar(traffic.requests, quiet=as_json) as tick:
            result = runner.run(spec, chip, dep, traffic, replica_pools, params, preemption, prefix_caching,
                                str(records) if records else None, str(timeline) if timeline else None, tick)
        m = result.metrics
        if band:
            from tokenfab.perf.band import metric_band
            rerun = lambda p: runner.run(spec, chip, dep, load(), replica_pools, p, preemption,  # noqa: E731
                                         prefix_caching).metrics
            m["band"] = {k: list(v) for k, v in metric_band(rerun, params, BAND_METRICS).items()}
    except runner.RunError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write output: {e.strerror} ({e.filename})")
    if not m.get("requests") and m.get("rejected"):
        for path in (records, timeline):      # a run that served nobody leaves no files behind
            if path is not None:
                Path(path).unlink(missing_ok=True)
        fail(f"every request was refused ({m['rejected']:,}): no prompt fits the KV cache of "
             f"{m.get('kv_capacity_tokens', 0):,.0f} tokens per replica; raise tp or lower the lengths")
    if as_json:
        print_json(m)
        return
    _print_simulation(m, spec.name, chip.id, replica_pools)


@contextmanager
def _progress_bar(total: int | None, quiet: bool) -> Iterator[Callable[[], None] | None]:
    """A transient bar on stderr and its per-request tick; none at all (not even Rich loaded) when `quiet`."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err.rich, transient=True) as bar:
        task = bar.add_task("simulating", total=total)
        count = [0]

        def tick() -> None:
            count[0] += 1
            if count[0] % 2048 == 0:
                bar.update(task, completed=count[0])
        yield tick


# what `simulate --band` reruns report
BAND_METRICS = ("ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "e2e_ms_p50", "e2e_ms_p99",
                "output_tokens_per_s")


def _print_simulation(m: dict[str, Any], model: str, chip: str, pools: Any) -> None:
    from rich.table import Table
    layout = (f"{pools.prefill} prefill + {pools.decode} decode replicas" if pools.disaggregated
              else f"{pools.replicas} replica(s)")
    table = Table("metric", "mean", "p50", "p90", "p99",
                  title=f"tokenfab simulate: {model} on {m['devices']} x {chip}, {layout}")
    for name, label in (("ttft", "TTFT ms"), ("tpot", "TPOT ms"), ("e2e", "end-to-end ms"), ("queue", "queueing ms")):
        table.add_row(label, *(f"{m[f'{name}_ms_{s}']:,.1f}" for s in ("mean", "p50", "p90", "p99")))
    out.print(table)
    if "band" in m:
        from tokenfab.perf.band import band_scales
        fast, slow = band_scales()
        bands = Table("metric", "simulated", "band", title=f"with every step x{fast:.2f} to x{slow:.2f} (the step "
                      "model's held-out error, P90 to P10)")
        for name, (low, high) in m["band"].items():
            bands.add_row(name, f"{m[name]:,.1f}", f"{low:,.1f} - {high:,.1f}")
        out.print(bands)
    summary = Table("figure", "value", show_header=False, title="throughput, goodput, memory, energy")
    rows = [("requests (rejected)", f"{m['requests']:,} ({m['rejected']:,})"),
            ("output tokens/s", f"{m['output_tokens_per_s']:,.0f}"),
            ("output tokens/s per chip", f"{m['output_tokens_per_s_per_device']:,.0f}"),
            ("goodput tokens/s (share of requests in SLO)",
             f"{m['goodput_tokens_per_s']:,.0f} ({m['goodput_requests_share']:.1%})"),
            ("mean decode batch", f"{m['mean_decode_batch']:.1f}"),
            ("KV utilisation mean (peak tokens / capacity)",
             f"{m['kv_utilisation_mean']:.1%} ({m['kv_peak_tokens']:,} / {m['kv_capacity_tokens']:,})"),
            ("preemptions", f"{m['preemptions']:,}"),
            ("prefix-cache hit tokens", f"{m['prefix_cache_hit_tokens']:,}"),
            ("energy J (avg power W)", f"{m['energy_j']:,.0f} ({m['avg_power_w']:,.0f})"),
            ("J per output token", f"{m['joules_per_output_token']:.3f}")]
    for row in rows:
        summary.add_row(*row)
    out.print(summary)
    if m["classes"]:
        classes = Table("class", "requests", "TTFT p50 ms", "TPOT p50 ms", "SLO", "in SLO", "attained",
                        "J per output token")
        for name, c in m["classes"].items():
            slo = " ".join(f"{k.split('_')[0].upper()}<={v:g}ms" for k, v in c.items() if k.endswith("_slo_ms"))
            classes.add_row(name, f"{c['requests']:,}", f"{c['ttft_ms']['p50']:,.1f}", f"{c['tpot_ms']['p50']:,.1f}",
                            slo or "-", f"{c['slo_met_share']:.1%}", "yes" if c["slo_attained"] else "no",
                            f"{c['joules_per_output_token']:.3f}")
        out.print(classes)

# the design search's commands (defined with the search, registered here)
app.command()(design)
app.command()(results)

if __name__ == "__main__":  # pragma: no cover
    app()
