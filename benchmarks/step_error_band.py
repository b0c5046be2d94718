"""The step model's held-out step-time error, written to the catalog for latency bands (`perf/band.py`).

    python benchmarks/step_error_band.py [--out src/tokenfab/catalog/data/step_error.json]

Refits the step model without each accelerator in turn (as `tokenfab validate --leave-one-hardware-out`
does, with our H100 run's fit half as extra fit data) and predicts that accelerator's engine rows
(offline, static, prefill: timed by the step model alone, no queue). Each row's error is turned into a
step-time error (a throughput predicted high is a step time predicted low); P10 and P90 bound the band.
About 90 s on two cores.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout, installed or not

from tokenfab.calibrate.fit import load_measured  # noqa: E402
from tokenfab.calibrate.profile import write_json_atomic  # noqa: E402
from tokenfab.validate import score_leave_one_hardware_out, step_time_errors  # noqa: E402

DATA = ROOT / "data" / "measured" / "calibration.jsonl"
FIT_EXTRA = ROOT / "data" / "measured" / "gpu-h100" / "steps-fit.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "tokenfab" / "catalog" / "data" / "step_error.json")
    args = ap.parse_args(argv)
    with DATA.open() as fh:
        points, _ = load_measured(fh)
    with FIT_EXTRA.open() as fh:
        extra, _ = load_measured(fh)
    errors = step_time_errors(score_leave_one_hardware_out(points, fit_only=extra))
    p10, p50, p90 = (float(v) for v in np.percentile(errors, [10, 50, 90]))
    record = {
        "p10": p10, "p50": p50, "p90": p90, "median_abs": float(np.median(np.abs(errors))), "rows": int(errors.size),
        "what": "predicted / measured step time - 1 on the engine rows (offline, static, prefill) of "
                "data/measured/calibration.jsonl, each predicted by a refit without its accelerator",
        "command": "python benchmarks/step_error_band.py",
        "date": datetime.date.today().isoformat(),
    }
    write_json_atomic(args.out, record)
    print(f"{errors.size} engine rows, step-time error P10 {p10:+.1%}, P50 {p50:+.1%}, P90 {p90:+.1%}; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
