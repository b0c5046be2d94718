"""Screen speed: candidate (chip x deployment) points per minute of the vectorised analytic screen.

Baseline, in the same process: the same points evaluated one at a time (one deployment per call, the
way a scalar model would), so the ratio shows what vectorisation buys. Target: >= 1e6 points/minute.
Run: .venv/bin/python benchmarks/bench_screen.py
"""

from __future__ import annotations

import time

import numpy as np

from tokenfab.search.chips import catalog_candidates, custom_candidate
from tokenfab.search.fluid import Mix, screen_layout
from tokenfab.search.problem import CHIP_AXES, DesignProblem
from tokenfab.search.screen import _class_demand, class_points, layouts


def main() -> None:
    prob = DesignProblem.load()
    demand = _class_demand(prob)
    axes = {a: prob.space_values(a)[len(prob.space_values(a)) // 2] for a in CHIP_AXES}
    cands = [custom_candidate(prob, axes)] + [c for c in catalog_candidates(prob) if c.label in ("h100-sxm", "b200")]
    # warm-up
    class_points(prob, cands[0], prob.classes[0], demand[prob.classes[0].name])
    points, start = 0, time.perf_counter()
    while time.perf_counter() - start < 20.0:
        for cand in cands:
            for cls in prob.classes:
                points += class_points(prob, cand, cls, demand[cls.name]).tps.size
    fast = points / (time.perf_counter() - start) * 60.0

    # baseline: one (batch limit, chunk, mode) point per call
    cand, cls = cands[1], prob.classes[0]
    deps = layouts(prob, cls.model, cand)[:4]
    mix, model = Mix.of([cls]), prob.models[cls.model]
    n, start = 0, time.perf_counter()
    for dep in deps:
        for b in prob.dep_values("max_batch"):
            for c in prob.dep_values("chunk_tokens"):
                screen_layout(model, cand.chip, dep, cand.params, mix, np.array([float(b)]), np.array([float(c)]))
                n += 2
    slow = n / (time.perf_counter() - start) * 60.0
    print(f"screen: {fast:,.0f} points/minute (vectorised, one process); baseline one point per call: "
          f"{slow:,.0f} points/minute; ratio {fast / slow:.1f}x; target 1,000,000: "
          f"{'met' if fast >= 1e6 else 'NOT met'}")


if __name__ == "__main__":
    main()
