"""`predict` over the whole calibration file, as the CLI runs it (fresh process, JSON lines out).

Baseline, in the same process: re-timing the already-planned queries with the shipped parameters
(what calibration does per trial). Prints both and their ratio. Target: the whole file in under 10 s.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from tokenfab.calibrate import load_measured  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "measured" / "calibration.jsonl"


def main() -> None:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tokenfab.cli", "predict", "--queries", str(DATA)],
                          capture_output=True, text=True, check=True)
    cli_seconds = time.perf_counter() - t0
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    answered = sum("predicted" in x for x in lines)

    t0 = time.perf_counter()
    points, _ = load_measured(DATA.read_text().splitlines())
    plan_seconds = time.perf_counter() - t0
    cal = shipped_calibration()
    t0 = time.perf_counter()
    for p in points:
        p.plan.evaluate(cal.for_chip(p.plan.chip))
    retime_seconds = time.perf_counter() - t0

    print(f"tokenfab predict --queries ({len(lines)} queries, {answered} answered): {cli_seconds:.2f} s "
          f"(process start included)  target < 10 s: {'PASS' if cli_seconds < 10 else 'FAIL'}")
    print(f"planning {len(points)} queries in-process: {plan_seconds:.3f} s; re-timing them: {retime_seconds:.4f} s")
    print(f"ratio full predict / re-time only: {cli_seconds / retime_seconds:,.0f}x")


if __name__ == "__main__":
    main()
