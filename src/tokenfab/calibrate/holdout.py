"""Fit a device profile on one half of its measured step grid and check it on the other half.

The same held-back half is also predicted without the device's measurements (datasheet-only priors,
and the published fit), so the report shows what measuring the device bought.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenfab.calibrate.profile import fit_device, plan_rows, split_halves
from tokenfab.calibrate.runner import DeviceRun
from tokenfab.perf.params import UNCALIBRATED, Calibration
from tokenfab.validate import Scored, score_in_sample

# Issue targets on the held-back half, median |pred/measured - 1| by phase.
TARGETS = {"decode": 0.05, "prefill": 0.10}
PHASE_OF = {"static": "decode", "prefill": "prefill"}
SPLIT = ("checkerboard over (batch rank, length rank) within each phase: points with an even rank sum fit, "
         "odd ones check")


@dataclass
class Holdout:
    fit_rows: list[Mapping[str, Any]]
    check_rows: list[Mapping[str, Any]]
    profile: Calibration          # fitted on `fit_rows` (and every microbenchmark)
    report: dict[str, Any]


def _stats(scored: list[Scored]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for scenario, phase in PHASE_OF.items():
        errs = np.array([s.error for s in scored if s.scenario == scenario])
        if errs.size:
            out[phase] = {"n": int(errs.size), "median_abs": float(np.median(np.abs(errs))),
                          "p90_abs": float(np.percentile(np.abs(errs), 90)), "bias": float(np.median(errs))}
    return out


def run_holdout(run: DeviceRun, base: Calibration) -> Holdout:
    """Fit on half the grid, score the other half calibrated, uncalibrated and with the published fit."""
    fit_rows, check_rows = split_halves(run.steps)
    profile = fit_device(run.microbench, fit_rows, run.chip, run.spec, base, run.chip_record, run.provenance)
    check = plan_rows(check_rows, profile.extra_chips())
    uncalibrated = Calibration(UNCALIBRATED.global_params, {}, UNCALIBRATED.provenance, chips=profile.chips)
    scored = {"calibrated": score_in_sample(check, profile), "uncalibrated": score_in_sample(check, uncalibrated),
              "published_fit": score_in_sample(check, base)}
    stats = {name: _stats(s) for name, s in scored.items()}
    met = {phase: stats["calibrated"].get(phase, {}).get("median_abs", np.inf) <= limit
           for phase, limit in TARGETS.items() if phase in stats["calibrated"]}
    report = {
        "hardware": run.chip.id,
        "chip": run.chip.name,
        "model": run.model,
        "split": SPLIT,
        "fit_points": len(fit_rows),
        "check_points": len(check_rows),
        "microbenchmarks": len(run.microbench.rows),
        "provenance": run.provenance,
        "held_out": stats,
        "targets": {"median_abs_max": TARGETS, "met": met},
        "meaning": {"calibrated": "profile fitted on the fit half and the microbenchmarks",
                    "uncalibrated": "datasheet-only priors (no fit at all)",
                    "published_fit": "the shipped calibration, fitted on published measurements of other setups"},
        "fitted": profile.hardware[run.chip.id],
        "fit": {k: v for k, v in profile.provenance["device_profile"].items() if k not in run.provenance},
        "predictions": [{"id": c.id, "scenario": c.scenario, "measured": c.measured,
                         **{name: s[i].predicted for name, s in scored.items()}}
                        for i, c in enumerate(scored["calibrated"])],
    }
    return Holdout(fit_rows, check_rows, profile, report)
