"""Held-out error bands for `predict` (`bands.py`), and their coverage.

    python benchmarks/error_bands.py [--out src/tokenfab/catalog/data/error_bands.json]

Refits the step model without each accelerator in turn (with our H100 run's fit half as extra fit data, as
`tokenfab validate --leave-one-hardware-out` does) and predicts that accelerator's rows: the engine and serving
rows of data/measured/calibration.jsonl and the capacity rows of data/measured/capacity.jsonl (never fitted).
The P10/P90 of predicted / measured - 1 by answer group and metric family are the bands. Coverage is checked
by nested leave-one-hardware-out: each accelerator's rows against bands from the other accelerators' residuals.
Target: 70-90% inside, for engine, serving and capacity rows separately. Several minutes on two cores.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout, installed or not

from tokenfab.bands import coverage, quantiles  # noqa: E402
from tokenfab.calibrate.fit import load_measured  # noqa: E402
from tokenfab.calibrate.profile import write_json_atomic  # noqa: E402
from tokenfab.queries import SCENARIOS  # noqa: E402
from tokenfab.validate import score_leave_one_hardware_out  # noqa: E402

MEASURED = ROOT / "data" / "measured"
DATA = (MEASURED / "calibration.jsonl", MEASURED / "capacity.jsonl")
FIT_EXTRA = MEASURED / "gpu-h100" / "steps-fit.jsonl"
TARGET = (0.70, 0.90)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "tokenfab" / "catalog" / "data" / "error_bands.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    points = []
    for path in DATA:
        with path.open() as fh:
            points += load_measured(fh, SCENARIOS)[0]
    with FIT_EXTRA.open() as fh:
        extra, _ = load_measured(fh)
    scored = score_leave_one_hardware_out(points, lambda hw: print(f"refit without {hw}", file=sys.stderr), extra)
    rows = [(s.hardware, s.scenario, s.metric, s.measured, s.predicted) for s in scored]
    bands = quantiles((s, m, p / v - 1.0) for _h, s, m, v, p in rows)
    cov = coverage(rows)
    result = {
        "command": "python benchmarks/error_bands.py",
        "date": datetime.date.today().isoformat(),
        "what": "P10/P90 of predicted / measured - 1 by answer group and metric family, each row predicted by a "
                "refit without its accelerator; coverage by nested leave-one-hardware-out",
        "bands": bands,
        "coverage": cov,
        "target": {"low": TARGET[0], "high": TARGET[1]},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(args.out, result)
    for g, c in sorted(cov.items()):
        ok = TARGET[0] <= c["coverage"] <= TARGET[1]
        print(f"{g:9s} coverage {c['coverage']:.0%} of {c['n']} rows ({'met' if ok else 'NOT met'}: "
              f"{TARGET[0]:.0%}-{TARGET[1]:.0%})")
    print(f"wrote {args.out} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
