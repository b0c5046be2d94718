"""tokenfab (leave-one-source-out) next to NVIDIA AIConfigurator 0.12.0 on the large-MoE end-to-end rows.

    python benchmarks/compare_peers_moe.py [--csv PATH] [--rows]
    # --csv: AIConfigurator's predictions, as written by benchmarks/aic_moe_rows.py
    #        (default: the saved run benchmarks/results/aic_moe_rows.csv, so no AIConfigurator install is needed)
    # --rows: also print every row (measured, both predictions and errors, AIConfigurator's status)

tokenfab's numbers are computed live, as benchmarks/moe_fidelity.py does: for each publication (source) with a
row AIConfigurator answered, the MoE stage is refitted without that source and the source's rows predicted.
Errors are prediction / measured - 1; each family (TPOT/step, throughput, TTFT) reports the median |error| of
both tools on the rows both answered, and the ratio tokenfab / AIConfigurator (< 1: tokenfab closer).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tokenfab.calibrate.fit import load_measured  # noqa: E402
from tokenfab.calibrate.moe_fit import fit_moe_stage, source_of  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402

DATA = ROOT / "data" / "measured" / "calibration-moe.jsonl"
SAVED = ROOT / "benchmarks" / "results" / "aic_moe_rows.csv"
E2E = ("offline", "static", "server", "concurrency", "prefill")
FAMILIES = ("TPOT/step", "throughput", "TTFT")


def family(metric: str) -> str | None:
    if metric.startswith(("tpot", "itl", "step")):
        return "TPOT/step"
    if metric.startswith("ttft"):
        return "TTFT"
    if "tokens_per_s" in metric:
        return "throughput"
    return None


def read_aic(path: Path) -> dict[str, dict]:
    with path.open() as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def tokenfab_loso(ids: set[str]) -> tuple[dict[str, float], int, int]:
    """Leave-one-source-out predictions for `ids` (every source holding one of them is refitted without
    itself); also how many end-to-end rows tokenfab can plan at all, out of how many."""
    points, skipped = load_measured(DATA.read_text().splitlines(), scenarios=E2E)
    base = shipped_calibration()
    preds: dict[str, float] = {}
    for src in sorted({source_of(p.id) for p in points if p.id in ids}):
        cal = fit_moe_stage([p for p in points if source_of(p.id) != src], base)
        for p in points:
            if source_of(p.id) == src and p.id in ids:
                preds[p.id] = p.plan.evaluate(cal.for_chip(p.plan.chip))[p.metric]
    n_e2e = len(points) + sum(1 for why in skipped.values() if "not fitted" not in why)
    return preds, len(points), n_e2e


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=SAVED, help="AIConfigurator predictions (aic_moe_rows.py output)")
    ap.add_argument("--rows", action="store_true", help="print every row")
    args = ap.parse_args()
    aic = read_aic(args.csv)
    rows = {r["id"]: r for r in map(json.loads, filter(str.strip, DATA.read_text().splitlines()))}
    aic_ok = {i for i, r in aic.items() if r["status"] == "ok" and r["aic_pred"]}
    tf, tf_planned, n_e2e = tokenfab_loso(aic_ok)
    both = sorted(i for i in aic_ok if i in tf)

    def err(pred: float, rid: str) -> float:
        return pred / float(rows[rid]["value"]) - 1.0

    print(f"end-to-end rows: {len(aic)} in {args.csv.name}; AIConfigurator answered {len(aic_ok)}, "
          f"tokenfab plans {tf_planned} of {n_e2e}; both answered {len(both)}")
    if args.rows:
        print(f"\n{'id':30s} {'metric':32s} {'measured':>11s} {'tokenfab':>11s} {'err':>7s} {'AIC':>11s} "
              f"{'err':>7s}  AIC status / detail")
        for rid, a in aic.items():
            meas = float(rows[rid]["value"])
            t = tf.get(rid)
            p = float(a["aic_pred"]) if a["aic_pred"] else None
            ts = f"{t:11.4g} {err(t, rid):+7.1%}" if t is not None else f"{'-':>11s} {'':7s}"
            ps = f"{p:11.4g} {err(p, rid):+7.1%}" if p is not None else f"{'-':>11s} {'':7s}"
            note = a["status"] if a["status"] == "ok" else f"{a['status']}: {a['detail'][:70]}"
            print(f"{rid:30s} {a['metric']:32s} {meas:11.4g} {ts} {ps}  {note}")
    print(f"\n{'family':28s} {'n':>3s} {'tokenfab LOSO':>14s} {'AIConfigurator':>15s} {'ratio':>6s}   "
          "(median |error|, rows both answered)")
    groups: dict[str, list[str]] = {f: [] for f in FAMILIES}
    for rid in both:
        fam = family(rows[rid]["metric"])
        if fam:
            groups[fam].append(rid)
    prefill_only = [i for i in groups["throughput"]
                    if rows[i]["output_len"] is None and rows[i]["scenario"] == "offline"]
    lines = [(f, groups[f]) for f in FAMILIES]
    lines.insert(2, ("  of which prefill-only", prefill_only))
    lines.insert(3, ("  of which decode / e2e", [i for i in groups["throughput"] if i not in prefill_only]))
    lines.append(("all", both))
    for name, ids in lines:
        if not ids:
            print(f"{name:28s} {0:3d} {'-':>14s} {'-':>15s} {'-':>6s}")
            continue
        mt = statistics.median(abs(err(tf[i], i)) for i in ids)
        ma = statistics.median(abs(err(float(aic[i]["aic_pred"]), i)) for i in ids)
        ratio = f"{mt / ma:6.2f}" if ma > 0 else f"{'-':>6s}"
        print(f"{name:28s} {len(ids):3d} {mt:14.1%} {ma:15.1%} {ratio}")
    no_aic: dict[str, int] = {}
    for a in aic.values():
        if a["status"] != "ok":
            why = a["detail"].split(":")[0].split("(")[0].strip()
            no_aic[why] = no_aic.get(why, 0) + 1
    print("\nAIConfigurator could not express:")
    for why, n in sorted(no_aic.items(), key=lambda kv: -kv[1]):
        print(f"  {n:3d}  {why}")
    if aic_ok - set(tf):
        print(f"answered by AIConfigurator only (tokenfab skips them): {', '.join(sorted(aic_ok - set(tf)))}")


if __name__ == "__main__":
    main()
