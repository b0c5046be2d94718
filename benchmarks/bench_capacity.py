"""Capacity queries: accuracy and time per query on data/measured/capacity.jsonl (never fitted on).

    python benchmarks/bench_capacity.py

Each MLPerf Server / Interactive row asks for the highest rate whose 600 s run keeps TTFT p99 and TPOT p99
within the benchmark's limits. Prints each query's answer, its error against the achieved rate and its time,
then the median |error| (target <= 10%) and the median and worst time per query (target < 5 s on the 2-core
machine). Baseline, in the same process: one `server` prediction at the measured rate (a single simulated run of
the same length), so the ratio says how many runs' worth a capacity answer costs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout, installed or not

from tokenfab import capacity_query, serving_query  # noqa: E402
from tokenfab.predict import predict_one  # noqa: E402
from tokenfab.queries import parse_query  # noqa: E402

DATA = ROOT / "data" / "measured" / "capacity.jsonl"


def main() -> int:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    errors, seconds, baseline = [], [], []
    for row in rows:
        q = parse_query(row)
        capacity_query._ANSWERS.clear()
        t0 = time.perf_counter()
        out = predict_one(q)
        seconds.append(time.perf_counter() - t0)
        server = parse_query({**row, "scenario": "server", "rate": row["value"], "metric": "output_tokens_per_s"})
        serving_query._SIMULATIONS.clear()
        t0 = time.perf_counter()
        predict_one(server)
        baseline.append(time.perf_counter() - t0)
        pred = out["predicted"]["requests_per_s"]
        lo, hi = out["band"]["requests_per_s"]
        errors.append(pred / row["value"] - 1.0)
        print(f"{row['id']:26s} {row['hardware']:10s} measured {row['value']:8.2f} predicted {pred:8.2f} "
              f"({errors[-1]:+.1%}; band {lo:.1f}-{hi:.1f}) {seconds[-1]:5.2f} s")
    med = float(np.median(np.abs(errors)))
    verdict = "met" if med <= 0.10 else "NOT met"
    print(f"capacity: median |error| {med:.1%} over {len(rows)} rows (target <= 10%: {verdict})")
    print(f"time per capacity query: median {np.median(seconds):.2f} s, worst {max(seconds):.2f} s "
          f"(target < 5 s); one server run at the measured rate: median {np.median(baseline):.2f} s; "
          f"ratio {np.median(seconds) / np.median(baseline):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
