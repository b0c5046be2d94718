"""Tier agreement: Spearman rank correlation between the screen's and the simulator's $/Mtok on the top 50
of the default design problem. Target >= 0.9. Run: .venv/bin/python benchmarks/bench_tiers.py [K]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tokenfab.search.problem import DesignProblem
from tokenfab.search.run import SearchOptions, design
from tokenfab.store import Store


def main() -> None:
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        s = design(DesignProblem.load(), Store(Path(tmp) / "t.duckdb"), SearchOptions(top_k=k), jobs=2)
    t = s["tiers"]
    for r in t["rows"]:
        sim = "fails SLO" if r["sim_usd_per_mtok"] is None else f"{r['sim_usd_per_mtok']:.4f}"
        print(f"  {r['label']:<40} screen {r['screen_usd_per_mtok']:.4f}  sim {sim}  capacity ratio "
              f"{', '.join(f'{x:.2f}' for x in r['capacity_ratio'])}")
    print(f"Spearman (screen vs simulator $/Mtok) on the top {t['k']}: {t['spearman']:.3f}; target 0.9: "
          f"{'met' if t['spearman'] >= 0.9 else 'NOT met'} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
