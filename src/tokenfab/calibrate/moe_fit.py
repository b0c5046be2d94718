"""The MoE stage of the fit: the few parameters only large-MoE serving constrains, on top of the dense fit.

The dense fit (`fit.fit_calibration`) sets every efficiency from dense models and microbenchmarks. Large-MoE
serving adds what those rows cannot see: SGLang's own step-time multiplier (no dense SGLang row exists) and
the fixed cost of each MoE layer (router top-k, token permutation, grouped-GEMM set-up), which dominates a
small-batch decode of a 58-MoE-layer model. This stage fits just those on the MoE rows it is given, with
every other parameter held at the dense fit, and a ridge pulling each towards its prior so a source with
few rows moves them little. Checked leave-one-source-out (`benchmarks/moe_fidelity.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.optimize import least_squares

from tokenfab.calibrate.fit import BOUNDS, Measured
from tokenfab.perf.params import MOE_STAGE_PARAMS, Calibration, EffParams

MOE_PARAMS = MOE_STAGE_PARAMS
# Scenarios whose MoE rows the stage fits: those the step model times without a queue, and phase-isolated
# decode pools (a closed loop held at a fixed batch). Server rows only check.
MOE_FIT_SCENARIOS = ("offline", "static", "prefill", "concurrency")
MOE_RIDGE = 0.3


def source_of(row_id: str) -> str:
    """The publication a measured row comes from (`<source_id>-<n>`)."""
    return row_id.rsplit("-", 1)[0]


def fit_moe_stage(points: Iterable[Measured], base: Calibration, names: tuple[str, ...] = MOE_PARAMS,
                  ridge: float = MOE_RIDGE) -> Calibration:
    """`base` with the MoE-stage parameters refitted on `points` (log-ratio residuals, soft-L1 loss)."""
    pts = [p for p in points if p.scenario in MOE_FIT_SCENARIOS]
    if not pts:
        return base
    # start from the priors, not from whatever the base was last fitted to (a held-out source must not leak)
    start = base.global_params.with_(**{n: getattr(EffParams(), n) for n in names})
    lo = np.array([np.log10(BOUNDS[n][0] / getattr(start, n)) for n in names])
    hi = np.array([np.log10(BOUNDS[n][1] / getattr(start, n)) for n in names])
    per_chip = {id(p): Calibration(start, base.family, {}, base.vendor, base.hardware).for_chip(p.plan.chip)
                for p in pts}

    def values(x: np.ndarray) -> dict[str, float]:
        return {n: float(getattr(start, n) * 10 ** x[i]) for i, n in enumerate(names)}

    def residuals(x: np.ndarray) -> np.ndarray:
        v = values(x)
        res = []
        for p in pts:
            pred = p.plan.evaluate(per_chip[id(p)].with_(**v))[p.metric]
            res.append(np.log(max(pred, 1e-30) / p.value))
        return np.concatenate([res, np.sqrt(ridge) * x])

    sol = least_squares(residuals, np.zeros(len(names)), bounds=(np.minimum(lo, -1e-6), np.maximum(hi, 1e-6)),
                        loss="soft_l1", f_scale=0.1, diff_step=1e-3, max_nfev=100)
    glob: EffParams = start.with_(**values(sol.x))
    provenance = dict(base.provenance)
    provenance["moe_stage"] = {"params": list(names), "points": len(pts), "ridge": ridge,
                               "sources": sorted({source_of(p.id) for p in pts})}
    return Calibration(glob, base.family, provenance, base.vendor, base.hardware, base.chips)
