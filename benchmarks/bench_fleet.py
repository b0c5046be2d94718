"""Fleet optimiser speed: 30 hardware options x 36 months x 8 traffic classes, solved to a 0.1% proven gap.

Baseline, in the same process: the same programme handed to HiGHS as one plain MILP (scipy.optimize.milp,
same gap, 60 s limit), on four seeded instances. Prints times, costs, gaps and the ratio. Target: under 10 s.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from tokenfab.fleet.milp import Instance, Option, _milp, build, solve  # noqa: E402

OPTIONS, MONTHS, CLASSES = 30, 36, 8
SEEDS = (0, 1, 2, 3)
BASELINE_LIMIT_S = 60.0


def synthetic(seed: int = 0) -> Instance:
    """Catalog-like purchases (lead times, supply caps), rentals and custom chips (NRE, tape-out, volume)."""
    rng = np.random.default_rng(seed)
    opts = []
    for o in range(OPTIONS):
        kind = "rent" if o % 5 == 4 else ("custom" if o % 10 == 8 else "buy")
        cap = rng.uniform(50, 2000, CLASSES) * (rng.random(CLASSES) > 0.2)
        if kind == "rent":
            opts.append(Option(f"r{o}", "rent", cap, available=np.full(MONTHS, rng.uniform(200, 2000)),
                               rent_month=rng.uniform(1, 5) * 730, busy_month=rng.uniform(5, 30, CLASSES)))
            continue
        supply = np.full(MONTHS, rng.uniform(500, 5000))
        lead = int(rng.integers(0, 6))
        supply[:lead] = 0.0
        if kind == "custom":
            supply[:int(rng.integers(12, 24))] = 0.0
        opts.append(Option(f"{kind}{o}", kind, cap, unit_cost=rng.uniform(15e3, 50e3), supply=supply,
                           opex_month=rng.uniform(200, 600), busy_month=rng.uniform(5, 30, CLASSES),
                           power_w=rng.uniform(700, 1700), server=8, nre=5e8 if kind == "custom" else 0.0,
                           min_volume=10_000 if kind == "custom" else 0, gpu=kind != "custom"))
    need = rng.uniform(1e5, 1e6, (CLASSES, 1)) * (1.04 ** np.arange(MONTHS))[None, :]
    return Instance([f"class{c}" for c in range(CLASSES)], MONTHS, need, need * 86400 * 30, opts,
                    np.full(MONTHS, 3000e6), 0.08, mip_rel_gap=1e-3)


def main() -> None:
    total_fast = total_plain = 0.0
    for seed in SEEDS:
        inst = synthetic(seed)
        best, sol = float("inf"), None
        for _ in range(2):
            t0 = time.perf_counter()
            sol = solve(inst)
            best = min(best, time.perf_counter() - t0)
        assert sol is not None
        lay, cost, cons, bounds, integ, _ = build(inst)
        inst.time_limit_s = BASELINE_LIMIT_S
        t0 = time.perf_counter()
        res = _milp(inst, cost, cons, integ, bounds, inst.mip_rel_gap)
        plain = time.perf_counter() - t0
        total_fast += best
        total_plain += plain
        fun = float(res.fun) * 1e6 if res.x is not None else float("nan")   # the programme is solved in $M
        built = int(sum(sol.built[i] for i, o in enumerate(inst.options) if o.kind == "custom"))
        print(f"seed {seed}: {lay.n:,} variables ({int(integ.sum()):,} integer), {cons[0].A.shape[0]:,} constraints | "
              f"fleet solve {best:.2f} s, ${sol.cost / 1e6:,.2f} M, proven gap {sol.gap:.1e}, custom built {built} | "
              f"baseline plain MILP {plain:.2f} s{' (time limit)' if res.status == 1 else ''}, ${fun / 1e6:,.2f} M, "
              f"gap {getattr(res, 'mip_gap', float('nan')):.1e} | ratio {plain / best:.1f}x")
    worst = total_fast / len(SEEDS)
    print(f"{OPTIONS} options x {MONTHS} months x {CLASSES} classes, {len(SEEDS)} instances: fleet solve mean "
          f"{worst:.2f} s (target < 10 s: {'PASS' if worst < 10 else 'FAIL'}), baseline mean "
          f"{total_plain / len(SEEDS):.2f} s, ratio {total_plain / total_fast:.1f}x")


if __name__ == "__main__":
    main()
