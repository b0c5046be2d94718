"""Serving fidelity: median |error| of the `server` rows of the measured data, by metric family and source.

The `server` rows (MLPerf Server/Interactive, TensorRT-LLM + Triton Poisson tables) are never fitted
by `tokenfab calibrate`; they check the serving simulator. Targets: TPOT median |error| <= 10%, TTFT <= 20%.

`--conditioning` also measures how well each latency row is posed: the simulation is rerun at 5% more load
and the load elasticity d ln(metric) / d ln(rate) is printed. A run near saturation (MLPerf Server runs
sit at the highest load that still passes) has an elasticity of 5-20: a 1% error in the step time that
sets its capacity moves its TPOT by 5-20%, so no step model reaches 10% there. Rows are then scored
separately by elasticity.

`--operating-point` checks the step model where the real server ran: Little's law turns each measured TPOT
(p50) and rate into the batch the server really carried (B = rate per replica x mean output x TPOT, with
rate x mean input x TPOT prompt tokens per step), and the step model's time for that step is set against
the measured TPOT. No simulation is involved, so this isolates the step model from the queue.

`--band` reruns every row with all steps faster and slower by the step model's held-out error (P90 and P10,
`perf/band.py`) and counts the measured values that fall inside the band the two runs span: how honest the
error bars that `tokenfab simulate --band` prints are on published serving runs.

    python benchmarks/serving_fidelity.py [--data data/measured/calibration.jsonl] [--rows] [--conditioning]
        [--operating-point] [--band] [--calibration PROFILE]
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
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout, installed or not
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


def bands(data: Path, scored: list[dict], calibration: Path | None = None) -> dict[str, tuple[float, float]]:
    """(low, high) of every scored row over two reruns with each step faster and slower by the step model's
    held-out error."""
    from dataclasses import replace

    from tokenfab.perf.band import band_scales
    from tokenfab.perf.params import load_calibration
    from tokenfab.predict import predict_many
    from tokenfab.queries import parse_query

    wanted = {r["id"] for r in scored if family(r["metric"]) in ("tpot", "ttft")}
    queries = [parse_query(r) for r in map(json.loads, filter(str.strip, data.read_text().splitlines()))
               if r["id"] in wanted]
    cal = load_calibration(str(calibration) if calibration else None)
    runs = []
    for scale in band_scales():
        scaled = replace(cal, global_params=cal.global_params.with_(time_scale=scale))
        runs.append({q.id: a["predicted"][q.metric] for q, a in zip(queries, predict_many(queries, scaled),
                                                                    strict=True) if "predicted" in a})
    return {i: (min(runs[0][i], runs[1][i]), max(runs[0][i], runs[1][i])) for i in runs[0] if i in runs[1]}


def coverage_table(scored: list[dict], band: dict[str, tuple[float, float]]) -> list[tuple[str, str, int, float]]:
    """(source, family, n, share of measured values inside the band) per source x latency family, then over
    all. Throughput is left out: a stable server delivers its arrival rate whatever its step time."""
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in scored:
        fam = family(r["metric"])
        if fam in ("tpot", "ttft") and r["id"] in band:
            low, high = band[r["id"]]
            inside = low <= r["measured"] <= high
            groups[(source(r["id"]), fam)].append(inside)
            groups[("all", fam)].append(inside)
    return [(src, fam, len(v), float(np.mean(v)))
            for (src, fam), v in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0]))]


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


def operating_point(data: Path, calibration: Path | None = None) -> list[tuple[str, str, float, float, float]]:
    """(id, hardware, batch, measured TPOT ms, model step ms) of every TPOT p50 / mean server row."""
    from tokenfab.hardware import load_chip
    from tokenfab.model import load_model
    from tokenfab.perf.params import load_calibration, shipped_calibration
    from tokenfab.perf.shapes import StepShapes
    from tokenfab.perf.step import step_cost
    from tokenfab.predict import query_deployment, query_lengths, query_replicas, serving_lengths
    from tokenfab.queries import parse_query

    cal = load_calibration(calibration) if calibration else shipped_calibration()
    out = []
    for line in data.read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("scenario") != "server" or row.get("metric") not in ("tpot_ms_p50", "tpot_ms_mean"):
            continue
        q = parse_query(row)
        model, chip = load_model(q.model), load_chip(q.hardware)
        dep = query_deployment(q, model, chip)
        isl, osl = query_lengths(q, q.model)
        inputs, outputs = (a.astype(float) for a in serving_lengths(q, isl, osl, 20000))
        rate = q.rate / query_replicas(q)
        tpot = row["value"] / 1e3
        batch = rate * outputs.mean() * tpot
        prompt = rate * inputs.mean() * tpot
        # a decoding request's context, averaged over its decode steps (long outputs weigh more)
        ctx = float(((inputs + outputs / 2) * outputs).sum() / outputs.sum())
        shapes = StepShapes.build(decode_seqs=batch, decode_ctx=batch * ctx, prefill_tokens=prompt,
                                  prefill_pairs=prompt * float((inputs ** 2).mean() / inputs.mean()) / 2,
                                  logits=batch + rate * tpot)
        step = float(step_cost(model, chip, dep, shapes, cal.for_chip(chip)).time[0])
        out.append((q.id, q.hardware, batch, row["value"], step * 1e3))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "measured" / "calibration.jsonl")
    ap.add_argument("--rows", action="store_true", help="also print every server row")
    ap.add_argument("--conditioning", action="store_true", help="also measure each latency row's load elasticity")
    ap.add_argument("--operating-point", action="store_true",
                    help="also time the step model at each row's measured operating point (Little's law)")
    ap.add_argument("--band", action="store_true",
                    help="also count the measured values inside the band of the step model's held-out error")
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
    if args.band:
        from tokenfab.perf.band import band_scales
        fast, slow = band_scales()
        print(f"\nmeasured value inside the band of every step x{fast:.2f} to x{slow:.2f}")
        for src, fam, n, share in coverage_table(scored, bands(args.data, scored, args.calibration)):
            print(f"{src:14s} {fam:8s} {n:4d} {share:9.0%}")
    if args.operating_point:
        points = operating_point(args.data, args.calibration)
        print("\nstep model at the measured operating point (TPOT p50 or mean rows)")
        for qid, hw, batch, measured, step in points:
            print(f"{qid:28s} {hw:12s} batch {batch:6.0f}  measured TPOT {measured:7.1f} ms  model step "
                  f"{step:7.1f} ms  {step / measured - 1:+.1%}")
        errs = np.array([step / measured - 1 for *_, measured, step in points])
        print(f"median |error| {np.median(np.abs(errs)):.1%} (n={len(errs)}), bias {np.median(errs):+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
