"""Step-cost speed: 10^5 (batch, context) decode points in one vectorised call, on one core.

Baseline, in the same process: the same function called point by point (what a per-request Python
loop would cost). Prints both and their ratio. Target: 10^5 points in under 1 s.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from tokenfab.deployment import Deployment  # noqa: E402
from tokenfab.hardware import load_chip  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.perf import StepShapes, step_cost  # noqa: E402

N = 100_000
BASELINE_N = 2_000


def main() -> None:
    model, chip = load_model("llama-3.1-70b"), load_chip("h100-sxm")
    dep = Deployment(tp=4, weight_precision="fp8", act_precision="fp8", kv_precision="fp8")
    rng = np.random.default_rng(0)
    batch = rng.integers(1, 1024, N).astype(float)
    ctx = rng.integers(128, 32768, N).astype(float)

    step_cost(model, chip, dep, StepShapes.decode(batch[:10], ctx[:10]))  # warm caches
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        cost = step_cost(model, chip, dep, StepShapes.decode(batch, ctx))
        best = min(best, time.perf_counter() - t0)
    assert cost.time.shape == (N,)

    t0 = time.perf_counter()
    for b, c in zip(batch[:BASELINE_N], ctx[:BASELINE_N], strict=True):
        step_cost(model, chip, dep, StepShapes.decode(b, c))
    per_point_loop = (time.perf_counter() - t0) / BASELINE_N

    loop_total = per_point_loop * N
    print(f"vectorised: {N:,} points in {best:.3f} s ({N / best:,.0f} points/s)  target < 1 s: "
          f"{'PASS' if best < 1 else 'FAIL'}")
    print(f"baseline point-by-point loop: {per_point_loop * 1e6:.1f} us/point -> {loop_total:.1f} s for {N:,}")
    print(f"ratio loop / vectorised: {loop_total / best:,.0f}x")


if __name__ == "__main__":
    main()
