"""Large-MoE serving fidelity: every end-to-end row of data/measured/calibration-moe.jsonl predicted with the
MoE stage refitted without that row's source (leave-one-source-out), and in-sample for reference.

    python benchmarks/moe_fidelity.py [--rows] [--ridge R]

`--ridge` sets the pull of the MoE-stage parameters towards their priors (default: the shipped MOE_RIDGE).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tokenfab.calibrate.fit import load_measured  # noqa: E402
from tokenfab.calibrate.moe_fit import MOE_RIDGE, fit_moe_stage, source_of  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402

DATA = ROOT / "data" / "measured" / "calibration-moe.jsonl"
E2E = ("offline", "static", "server", "concurrency", "prefill")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", action="store_true", help="print every row")
    ap.add_argument("--ridge", type=float, default=MOE_RIDGE, help="pull of the MoE-stage parameters to their priors")
    args = ap.parse_args()
    points, skipped = load_measured(DATA.read_text().splitlines(), scenarios=E2E)
    base = shipped_calibration()
    sources = sorted({source_of(p.id) for p in points})
    held: list[tuple[str, float, float, float]] = []
    for src in sources:
        cal = fit_moe_stage([p for p in points if source_of(p.id) != src], base, ridge=args.ridge)
        for p in points:
            if source_of(p.id) == src:
                pred = p.plan.evaluate(cal.for_chip(p.plan.chip))[p.metric]
                held.append((p.id, p.value, pred, pred / p.value - 1.0))
    errs = [abs(e) for *_, e in held]
    if args.rows:
        for rid, value, pred, err in held:
            print(f"{rid:32s} measured {value:12.2f} predicted {pred:12.2f} error {err:+.1%}")
    by_source: dict[str, list[float]] = {}
    for rid, *_, err in held:
        by_source.setdefault(source_of(rid), []).append(abs(err))
    for src, e in sorted(by_source.items()):
        print(f"{src:28s} n={len(e):3d} median |error| {statistics.median(e):6.1%}")
    print(f"skipped {len(skipped)} rows the tool cannot answer:")
    for rid, why in sorted(skipped.items()):
        print(f"  {rid}: {why[:110]}")
    print(f"leave-one-source-out: {len(errs)} rows answered, median |error| {statistics.median(errs):.1%}")


if __name__ == "__main__":
    main()
