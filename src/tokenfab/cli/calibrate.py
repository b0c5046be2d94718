"""`tokenfab calibrate` and `tokenfab validate`: fit the efficiency parameters to measurements (or measure this
machine), and score predictions against measurements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.common import load_cal
from tokenfab.cli.io import JsonOpt, err, fail, out, print_json
from tokenfab.cli.options import CalibrationOpt, one_of


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


def calibrate(
    data: Annotated[list[Path] | None, typer.Option(help="measured queries (JSONL with 'value') to fit; repeat to "
                                                    "fit several files together")] = None,
    device: Annotated[str | None, typer.Option(help="measure this machine instead (needs PyTorch: the gpu extra)",
                                               callback=one_of("tokenfab.calibrate.torchenv:DEVICES"))] = None,
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
    cal = load_cal(calibration)
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
