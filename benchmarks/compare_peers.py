"""Side by side with the peer tools on the calibration queries (offline, static, prefill).

    python benchmarks/compare_peers.py [PEERS_DIR/fidelity]

The folder holds what the peer harness writes (preds_*.csv, or the merged predictions.csv): GenZ,
llm-analysis and NVIDIA AIConfigurator predictions, one row per query x peer x variant. tokenfab is
scored on the same ids two ways: with the shipped calibration (in-sample) and leave-one-hardware-out
(each hardware predicted by a refit that never saw it). Prints median / p90 |pred/measured - 1| and
bias on each peer's answered set and on the set all three answered, with each peer's median error
divided by tokenfab's leave-one-hardware-out median.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tokenfab.calibrate import load_measured
from tokenfab.perf.params import shipped_calibration
from tokenfab.validate import ENGINE_SCENARIOS, score_in_sample, score_leave_one_hardware_out

DATA = Path(__file__).resolve().parents[1] / "data" / "measured" / "calibration.jsonl"
GPU_FIT = DATA.parent / "gpu-h100" / "steps-fit.jsonl"   # the shipped fit also uses our H100 run's fit half
PRIMARY = {"genz": "builtin", "llm-analysis": "default", "aiconfigurator": "agg512"}


def stats(ratios: list[float]) -> tuple[int, float, float, float]:
    r = np.asarray(ratios)
    return len(r), float(np.median(abs(r - 1))), float(np.percentile(abs(r - 1), 90)), float(np.median(r - 1))


def fmt(s: tuple[int, float, float, float]) -> str:
    return f"{s[0]:4d} | {s[1]:6.1%} | {s[2]:6.1%} | {s[3]:+6.1%}"


def read_peer_rows(folder: Path) -> list[dict[str, str]]:
    files = sorted(folder.glob("preds_*.csv")) or [folder / "predictions.csv"]
    rows: list[dict[str, str]] = []
    for path in files:
        with open(path) as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def main(folder: str) -> None:
    peers: dict[str, dict[str, float]] = defaultdict(dict)
    rows = read_peer_rows(Path(folder))
    for row in rows:
        if PRIMARY.get(row["peer"]) == row["variant"] and row["status"] == "ok" and row["scenario"] in ENGINE_SCENARIOS:
            peers[row["peer"]][row["id"]] = float(row["pred"]) / float(row["measured"])
    fit_points, _ = load_measured(DATA.read_text().splitlines())   # every fitted scenario, as the shipped fit
    own, _ = load_measured(GPU_FIT.read_text().splitlines())
    points = [p for p in fit_points if p.scenario in ENGINE_SCENARIOS]
    ours = {
        "tokenfab (shipped fit)": {s.id: s.predicted / s.measured
                                   for s in score_in_sample(points, shipped_calibration())},
        "tokenfab (leave-one-hardware-out)": {s.id: s.predicted / s.measured
                                              for s in score_leave_one_hardware_out(fit_points, fit_only=own)
                                              if s.scenario in ENGINE_SCENARIOS},
    }
    print("| peer set | tool | n | median | p90 | bias | peer median / tokenfab LOHO median |")
    print("|---|---|---:|---:|---:|---:|---:|")
    common = set.intersection(*(set(v) for v in peers.values())) if peers else set()
    sets = {f"{p} answered": set(v) for p, v in peers.items()}
    sets["all three peers answered"] = common
    for label, ids in sets.items():
        loho_ids = ids & set(ours["tokenfab (leave-one-hardware-out)"])
        loho = stats([ours["tokenfab (leave-one-hardware-out)"][i] for i in loho_ids])
        for peer, preds in peers.items():
            if label.startswith(peer) or label.startswith("all"):
                s = stats([preds[i] for i in loho_ids])
                print(f"| {label} | {peer} | {fmt(s)} | {s[1] / loho[1]:.1f}x |")
        for name, preds in ours.items():
            print(f"| {label} | {name} | {fmt(stats([preds[i] for i in loho_ids]))} | |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path.home() / ".cache/tokenfab-peers/fidelity"))
