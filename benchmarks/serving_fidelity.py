"""Serving fidelity: median |error| of the `server` rows of the measured data, by metric family and source.

The `server` rows (MLPerf Server/Interactive, TensorRT-LLM + Triton Poisson tables) are never fitted
by `tokenfab calibrate`; they check the serving simulator. Targets: TPOT median |error| <= 10%, TTFT <= 20%.

    python benchmarks/serving_fidelity.py [--data data/measured/calibration.jsonl] [--rows]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("tpot", "ttft", "output")


def family(metric: str) -> str | None:
    return next((f for f in FAMILIES if metric.startswith(f)), None)


def source(qid: str) -> str:
    """Source tag of a row id: TRTLLM_SERVING_V0.14-001 -> triton, MLPERF_INF_V4.1-002 -> mlperf-v4.1."""
    m = re.match(r"MLPERF_INF_V(\d+\.\d+)", qid)
    return f"mlperf-v{m.group(1)}" if m else "triton" if qid.startswith("TRTLLM_SERVING") else qid.rsplit("-", 1)[0]


def load_scored(data: Path) -> list[dict]:
    """The validate command's per-query predictions for the `server` rows."""
    exe = ROOT / ".venv" / "bin" / "tokenfab"
    out = subprocess.run([str(exe), "validate", "--data", str(data), "--json"], check=True,
                         capture_output=True, text=True).stdout
    obj = json.loads(out)
    rows = obj["predictions"] if isinstance(obj, dict) else obj
    return [r for r in rows if r.get("scenario") == "server"]


def table(scored: list[dict]) -> list[tuple[str, str, int, float, float]]:
    """(source, family, n, median |error|, median error) per source x family, then per family over all."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in scored:
        fam = family(r["metric"])
        if fam is None:
            continue
        err = r["predicted"] / r["measured"] - 1.0
        groups[(source(r["id"]), fam)].append(err)
        groups[("all", fam)].append(err)
    out = []
    for (src, fam), errs in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        e = np.asarray(errs)
        out.append((src, fam, len(e), float(np.median(np.abs(e))), float(np.median(e))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "measured" / "calibration.jsonl")
    ap.add_argument("--rows", action="store_true", help="also print every server row")
    args = ap.parse_args()
    scored = load_scored(args.data)
    if args.rows:
        for r in sorted(scored, key=lambda r: r["id"]):
            print(f"{r['id']:28s} {r['hardware']:10s} {r['metric']:22s} meas {r['measured']:10.2f} "
                  f"pred {r['predicted']:10.2f} err {r['predicted'] / r['measured'] - 1:+.1%}")
    print(f"{'source':14s} {'metric':8s} {'n':>4s} {'med|err|':>9s} {'bias':>8s}")
    for src, fam, n, med, bias in table(scored):
        print(f"{src:14s} {fam:8s} {n:4d} {med:9.1%} {bias:+8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
