"""The `tokenfab` command: parse, call, print. Bad input: one line naming the field, exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from tokenfab import catalog
from tokenfab.units import GiB

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Design and price LLM-inference hardware: predict, calibrate, validate, compare.")
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
    scenario: Annotated[str | None, typer.Option(help="offline|static|prefill|layer|gemm|memcopy|allreduce")] = None,
    hardware: Annotated[str | None, typer.Option(help="catalog hardware id")] = None,
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
                                   metric=metric).items() if v is not None}
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


def _measured(data: Path, chips: Any = None):
    from tokenfab.calibrate import load_measured
    try:
        with open(data) as fh:
            return load_measured(fh, chips=chips)
    except OSError as e:
        fail(f"--data {str(data)!r}: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(f"--data {str(data)!r}: malformed JSON at line {e.lineno}: {e.msg}")


@app.command()
def calibrate(
    data: Annotated[Path | None, typer.Option(help="measured queries (JSONL with 'value') to fit")] = None,
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
) -> None:
    """Fit the efficiency parameters to measured data, or measure this machine's GPU/CPU into a profile."""
    if (data is None) == (device is None):
        fail("give --data FILE (fit measurements) or --device cuda|cpu (measure this machine), not both")
    if device is not None:
        _calibrate_device(device, out_path or Path("profile.json"), steps, hardware, model)
        return
    for flag, value in (("--steps", steps), ("--hardware", hardware), ("--model", model)):
        if value is not None:
            fail(f"{flag} applies to --device (measuring this machine), not to --data")
    from tokenfab.calibrate import fit_calibration
    out_path = out_path or Path("calibration.json")
    points, skipped = _measured(data)
    if not points:
        fail(f"--data {str(data)!r}: no query of a fitted scenario could be planned")
    cal = fit_calibration(points, source=data.name)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    tmp.write_text(json.dumps(cal.to_json(), indent=1, sort_keys=True) + "\n")
    tmp.replace(out_path)  # never leave a half-written profile behind
    out.print(f"fitted {len(points)} measurements ({len(skipped)} skipped); families: "
              f"{', '.join(cal.family) or 'none'}; wrote {out_path}")


def _calibrate_device(device: str, out_path: Path, steps: Path | None, hardware: str | None,
                      model: str | None) -> None:
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
    out.print(f"{run.chip.name}: {len(run.microbench.rows)} microbenchmarks, {len(run.steps)} step times of "
              f"{run.model}; gemm_eff {fitted['gemm_eff']:.2f}, mem_eff {fitted['mem_eff']:.2f}, attn_eff "
              f"{fitted['attn_eff']:.2f}, t_step {fitted['t_step'] * 1e6:.0f} us, t_layer "
              f"{fitted['t_layer'] * 1e6:.0f} us; wrote {out_path}" + (f" and {steps}" if steps else ""))


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
    cal = _load_cal(calibration)
    points, skipped = _measured(data, cal.extra_chips())
    if leave_one_hardware_out:
        with err.status("refitting without each hardware") as status:
            scored = v.score_leave_one_hardware_out(points, lambda hw: status.update(f"refitting without {hw}"))
        mode = "leave-one-hardware-out"
    else:
        scored = v.score_in_sample(points, cal)
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
    top: Annotated[int, typer.Option(help="rows to show")] = 40,
    calibration: Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")] = None,
) -> None:
    """Rank every catalog accelerator that can serve the model (best TP and precision for each)."""
    from tokenfab.compare import compare as run_compare
    from tokenfab.model import ModelConfigError, load_model
    if input_len <= 0 or output_len <= 0:
        fail("--input-len and --output-len must be positive token counts")
    try:
        load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    options = run_compare(model, input_len, output_len, _load_cal(calibration))
    if not options:
        fail(f"model {model} fits on no catalog accelerator with tp <= 8")
    table = Table("#", "hardware", "tp", "precision", "out tok/s/device", "TPOT ms", "batch", "tok/J",
                  "$/Mtok out (low-high)",
                  title=f"{model}: {input_len:.0f} in / {output_len:.0f} out, offline max throughput")
    for i, o in enumerate(options[:top], 1):
        usd = "-" if o.usd_per_mtok is None else (
            f"{o.usd_per_mtok:.2f} ({o.usd_per_mtok_low:.2f}-{o.usd_per_mtok_high:.2f})")
        table.add_row(str(i), o.chip.id, str(o.tp), o.precision, f"{o.tokens_per_s_per_device:,.0f}",
                      f"{o.tpot_ms:.1f}", f"{o.concurrency:.0f}",
                      f"{o.tokens_per_joule:.2f}" if o.chip.tdp_w else "-", usd)
    out.print(table)
    out.print("tok/J from TDP x utilisation (accelerators only); $/Mtok on each chip's cloud $/GPU-hour "
              "(catalog low-typical-high), at full utilisation.")


if __name__ == "__main__":  # pragma: no cover
    app()
