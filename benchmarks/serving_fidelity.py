"""Serving fidelity: median |error| of the `server` rows of the measured data, by metric family and source.

The `server` rows (MLPerf Server/Interactive, TensorRT-LLM + Triton Poisson tables) are never fitted
by `tokenfab calibrate`; they check the serving simulator. Targets: TPOT median |error| <= 10%, TTFT <= 20%.

`--conditioning` also measures how well each latency row is posed: the simulation is rerun at 5% more load
and the load elasticity d ln(metric) / d ln(rate) is printed. A run near saturation (MLPerf Server runs
sit at the highest load that still passes) has an elasticity of 5-20: a 1% error in the step time that
sets its capacity moves its TPOT by 5-20%, so no step model reaches 10% there. Rows are then scored
separately by elasticity.

    python benchmarks/serving_fidelity.py [--data data/measured/calibration.jsonl] [--rows] [--conditioning]
        [--calibration PROFILE]
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


def load_scored(data: Path, calibration: Path | None = None) -> list[dict]:
    """The validate command's per-query predictions for the `server` rows."""
    exe = ROOT / ".venv" / "bin" / "tokenfab"
    extra = ["--calibration", str(calibration)] if calibration else []
    out = subprocess.run([str(exe), "validate", "--data", str(data), "--json", *extra], check=True,
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


LOAD_STEP = 1.05
WELL_POSED = 2.0     # elasticity at or below which a 5% capacity error moves the metric by at most ~10%


def load_elasticity(data: Path, scored: list[dict], calibration: Path | None = None) -> dict[str, float]:
    """d ln(metric) / d ln(rate) of every scored latency row, from one extra simulation per run at
    LOAD_STEP x its rate (the same seed, so the two runs differ only in load)."""
    sys.path.insert(0, str(ROOT / "src"))
    from tokenfab.perf.params import load_calibration
    from tokenfab.predict import predict_many
    from tokenfab.queries import parse_query

    wanted = {r["id"] for r in scored if family(r["metric"]) in ("tpot", "ttft")}
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    queries = [parse_query(r) for r in rows if r["id"] in wanted]
    loaded = [q.model_copy(update={"rate": q.rate * LOAD_STEP}) for q in queries]
    cal = load_calibration(calibration) if calibration else None
    base = {r["id"]: r["predicted"] for r in scored}
    out = {}
    for q, ans in zip(queries, predict_many(loaded, cal), strict=True):
        if "predicted" in ans and base.get(q.id):
            out[q.id] = float(np.log(ans["predicted"][q.metric] / base[q.id]) / np.log(LOAD_STEP))
    return out


def conditioning_table(scored: list[dict], elasticity: dict[str, float]) -> list[tuple[str, str, int, float, float]]:
    """The latency rows split by how well posed they are (elasticity <= WELL_POSED or above)."""
    split = []
    for r in scored:
        if r["id"] in elasticity:
            tag = "well-posed" if abs(elasticity[r["id"]]) <= WELL_POSED else "near-saturation"
            split.append({**r, "id": tag})
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in split:
        groups[(r["id"], family(r["metric"]))].append(r["predicted"] / r["measured"] - 1.0)
    return [(tag, fam, len(e), float(np.median(np.abs(e))), float(np.median(e)))
            for (tag, fam), e in sorted(groups.items())]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "measured" / "calibration.jsonl")
    ap.add_argument("--rows", action="store_true", help="also print every server row")
    ap.add_argument("--conditioning", action="store_true", help="also measure each latency row's load elasticity")
    ap.add_argument("--calibration", type=Path, default=None, help="profile to predict with (default: shipped)")
    args = ap.parse_args()
    scored = load_scored(args.data, args.calibration)
    elasticity = load_elasticity(args.data, scored, args.calibration) if args.conditioning else {}
    if args.rows:
        for r in sorted(scored, key=lambda r: r["id"]):
            el = f" elasticity {elasticity[r['id']]:5.1f}" if r["id"] in elasticity else ""
            print(f"{r['id']:28s} {r['hardware']:10s} {r['metric']:22s} meas {r['measured']:10.2f} "
                  f"pred {r['predicted']:10.2f} err {r['predicted'] / r['measured'] - 1:+.1%}{el}")
    print(f"{'source':14s} {'metric':8s} {'n':>4s} {'med|err|':>9s} {'bias':>8s}")
    for src, fam, n, med, bias in table(scored):
        print(f"{src:14s} {fam:8s} {n:4d} {med:9.1%} {bias:+8.1%}")
    if elasticity:
        print(f"\nby load elasticity (well-posed: |d ln metric / d ln rate| <= {WELL_POSED})")
        for tag, fam, n, med, bias in conditioning_table(scored, elasticity):
            print(f"{tag:16s} {fam:6s} {n:4d} {med:9.1%} {bias:+8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
