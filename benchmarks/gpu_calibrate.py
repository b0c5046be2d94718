"""Calibrate and validate tokenfab on this machine's GPU (or CPU) in one run; JSON outputs to OUTDIR.

    python benchmarks/gpu_calibrate.py OUTDIR [--device cuda|cpu] [--hardware ID] [--model ID]

Steps: microbenchmarks (GEMM grid per precision, memcopy, attention, launch overhead), then decode and
prefill step times of a random-weight llama-3.1-8b in bf16 (batch 1..256, context 128..8192) on a GPU,
or of the 2-layer llama-tiny on a CPU. Then a profile is fitted on one half of the step grid and the
other half is predicted with it, with the datasheet-only priors and with the published fit.

Writes to OUTDIR:
  microbench.json      raw microbenchmarks (gemm/memcopy rows in the query schema, attention, overhead)
  steps.jsonl          every measured step time as a query row (static tpot_ms_mean / prefill ttft_ms_mean)
  steps-fit.jsonl      the half the held-out profile was fitted on
  steps-check.jsonl    the held-back half
  profile-half.json    profile fitted on steps-fit.jsonl (+ microbenchmarks)
  profile.json         profile fitted on every step time (the one to use: predict --calibration)
  validation.json      held-out errors: calibrated vs uncalibrated vs published fit, targets, provenance
Re-check later without the GPU:
  tokenfab validate --data OUTDIR/steps-check.jsonl --calibration OUTDIR/profile-half.json
  python benchmarks/gpu_calibrate.py OUTDIR --refit     # fit and check again from the saved measurements
Expected wall time on an H100/H200: about 2-3 minutes (budget 8). Needs torch with CUDA on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout, installed or not

from tokenfab.calibrate.holdout import run_holdout  # noqa: E402
from tokenfab.calibrate.profile import fit_device, profile_json, write_json_atomic, write_jsonl_atomic  # noqa: E402
from tokenfab.calibrate.runner import load_run, measure  # noqa: E402
from tokenfab.calibrate.torchenv import DeviceError  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--hardware", default=None, help="catalog id, when the GPU's name is not recognised")
    ap.add_argument("--model", default=None, help="Llama-architecture model id or config.json")
    ap.add_argument("--refit", action="store_true", help="measure nothing: fit and check OUTDIR's saved data again")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    args.outdir.mkdir(parents=True, exist_ok=True)
    out = args.outdir

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {what}", flush=True)
    if args.refit:
        run = load_run(out)
    else:
        try:
            run = measure(args.device, args.hardware, args.model, progress=progress)
        except DeviceError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        write_json_atomic(out / "microbench.json", {"provenance": run.provenance, "chip_record": run.chip_record,
                                                    **run.microbench.to_json()})
        write_jsonl_atomic(out / "steps.jsonl", run.steps)
    measured_s = time.perf_counter() - t0

    progress("fitting on half the grid, checking on the other half")
    base = shipped_calibration()
    held = run_holdout(run, base)
    write_jsonl_atomic(out / "steps-fit.jsonl", held.fit_rows)
    write_jsonl_atomic(out / "steps-check.jsonl", held.check_rows)
    write_json_atomic(out / "profile-half.json", profile_json(held.profile, run.microbench))
    progress("fitting on the whole grid")
    full = fit_device(run.microbench, run.steps, run.chip, run.spec, base, run.chip_record, run.provenance)
    write_json_atomic(out / "profile.json", profile_json(full, run.microbench))
    report = {**held.report, "wall_s": {"measure": measured_s, "total": time.perf_counter() - t0}}
    write_json_atomic(out / "validation.json", report)

    print(f"\n{run.chip.name} ({run.chip.id}), {run.model}: fit on {report['fit_points']} step times, "
          f"checked on {report['check_points']}")
    print(f"{'held-out median |err|':24s} {'decode':>8s} {'prefill':>8s}")
    for name, stats in report["held_out"].items():
        cells = [f"{stats[p]['median_abs']:8.1%}" if p in stats else f"{'-':>8s}" for p in ("decode", "prefill")]
        print(f"{name:24s} {' '.join(cells)}")
    print(f"targets (decode <= 5%, prefill <= 10%) met: {report['targets']['met']}")
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir() if not p.name.startswith('.')))} to {out} "
          f"in {report['wall_s']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
