"""Fit efficiency parameters: global ones on all measurements, then per-family refinements.

Stage 1 fits every global parameter on all the data (log-ratio residuals, robust loss). Stage 2 fits,
for each hardware family with enough measurements, multiplicative corrections of the family
parameters, pulled towards 1 by a ridge penalty so a family with few points moves little. A chip of
a family with no measurements therefore gets the global values: its prediction rests on its
datasheet and nothing fitted to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
from scipy.optimize import least_squares

from tokenfab.hardware import Chip
from tokenfab.perf.params import FAMILY_PARAMS, SCALAR_PARAMS, Calibration, EffParams, vendor_key
from tokenfab.predict import Plan, QueryError, plan_query
from tokenfab.queries import parse_query

# Scenarios the fit uses. Serving rows (server/concurrency) are held out: they check the simulator.
FIT_SCENARIOS = ("offline", "static", "prefill", "layer", "gemm", "memcopy", "allreduce")

# log10 bounds of every fitted parameter: physically meaningful ranges, not tuning knobs
BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_eff": (0.3, 1.0), "lowp_ratio": (0.4, 1.0), "gemm_m_half": (1.0, 256.0), "roof_q": (1.5, 8.0),
    "mem_eff": (0.4, 1.0), "kv_mem_eff": (0.3, 1.0), "attn_eff": (0.1, 0.95), "t_step": (1e-5, 5e-3),
    "mem_latency": (2e-7, 3e-6), "engine_gemm_ratio": (0.4, 1.2),
    "t_layer": (1e-7, 1e-4), "t_kernel": (1e-6, 5e-5), "legacy_scale": (0.5, 3.0), "vllm_scale": (0.5, 3.0),
    "sglang_scale": (0.5, 3.0), "trtllm_pytorch_scale": (0.5, 3.0), "t_moe_layer": (1e-7, 2e-4),
    "t_host_step": (1e-5, 3e-2), "a2a_alpha": (2e-6, 3e-4),
    "sglang_fixed_ratio": (0.1, 1.0), "trtllm_pytorch_fixed_ratio": (0.1, 3.0),
    "moe_m_half": (1.0, 256.0),
    "moe_eff": (0.2, 1.0), "elem_scale": (0.5, 10.0), "legacy_gqa_reread": (0.01, 1.0),
    "legacy_layer_ratio": (1.0, 10.0),
}
COMM_BOUNDS = {"alpha": (1e-6, 1e-4), "eff": (0.2, 1.0)}
FAMILY_RIDGE = 3.0       # penalty weight on log10 family corrections
MIN_FAMILY_POINTS = 1    # a family with any measurement refines; the ridge keeps a lone point from dominating


@dataclass
class Measured:
    """A calibration query with its measured value and ready-made plan."""

    id: str
    hardware: str
    family: str
    scenario: str
    metric: str
    value: float
    plan: Plan


@dataclass
class FitResult:
    calibration: Calibration
    used: list[str]
    skipped: dict[str, str]


def load_measured(lines: Iterable[str], scenarios: Iterable[str] = FIT_SCENARIOS,
                  chips: Mapping[str, Chip] | None = None) -> tuple[list[Measured], dict]:
    """Plan every measured query of the given scenarios; return the plans and the skipped ids with reasons.
    `chips`: devices outside the catalog that queries may name (see `Calibration.extra_chips`)."""
    keep = set(scenarios)
    out: list[Measured] = []
    skipped: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        obj = json.loads(line)
        qid = obj.get("id", "?")
        if obj.get("scenario") not in keep:
            skipped[qid] = f"scenario {obj.get('scenario')} not fitted"
            continue
        try:
            q = parse_query(obj)
            plan = plan_query(q, chips)
            value = float(obj["value"])
        except (QueryError, ValueError, KeyError) as err:
            skipped[qid] = str(err)
            continue
        out.append(Measured(qid, q.hardware, plan.chip.family, q.scenario, q.metric or "", value, plan))
    return out, skipped


def _log_residuals(points: list[Measured], params_for, ) -> np.ndarray:
    res = np.empty(len(points))
    for i, pt in enumerate(points):
        pred = pt.plan.evaluate(params_for(pt))[pt.metric]
        res[i] = np.log(max(pred, 1e-30) / pt.value)
    return res


def _comm_fabrics(points: list[Measured]) -> list[str]:
    """Fabrics whose alpha-beta parameters the data constrain (microbenchmarks or TP>1 runs)."""
    return sorted({pt.plan.fabric for pt in points if pt.plan.fabric})


def _unpack_global(x: np.ndarray, base: EffParams, fabrics: list[str]) -> EffParams:
    values = {name: float(10 ** x[i]) for i, name in enumerate(SCALAR_PARAMS)}
    alpha, eff = dict(base.comm_alpha), dict(base.comm_eff)
    off = len(SCALAR_PARAMS)
    for j, fab in enumerate(fabrics):
        alpha[fab] = float(10 ** x[off + 2 * j])
        eff[fab] = float(10 ** x[off + 2 * j + 1])
    return base.with_(**values, comm_alpha=alpha, comm_eff=eff)


def _fit_global(points: list[Measured], base: EffParams) -> EffParams:
    fabrics = _comm_fabrics(points)
    x0, lo, hi = [], [], []
    for name in SCALAR_PARAMS:
        b = BOUNDS[name]
        x0.append(np.log10(np.clip(getattr(base, name), *b)))
        lo.append(np.log10(b[0]))
        hi.append(np.log10(b[1]))
    for fab in fabrics:
        for key, value in (("alpha", base.comm_alpha[fab]), ("eff", base.comm_eff[fab])):
            b = COMM_BOUNDS[key]
            x0.append(np.log10(np.clip(value, *b)))
            lo.append(np.log10(b[0]))
            hi.append(np.log10(b[1]))
    x0 = np.clip(np.array(x0), np.array(lo) + 1e-9, np.array(hi) - 1e-9)

    def residuals(x: np.ndarray) -> np.ndarray:
        params = _unpack_global(x, base, fabrics)
        return _log_residuals(points, lambda _pt: params)

    sol = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, diff_step=1e-3,
                        max_nfev=400)
    return _unpack_global(sol.x, base, fabrics)


def fit_params(points: list[Measured], start: EffParams, names: Iterable[str], ridge: float,
               bounds: Mapping[str, tuple[float, float]] = BOUNDS, max_nfev: int = 200) -> EffParams:
    """Fit multiplicative corrections of `names` to `start`, pulled towards 1 by a ridge on their log10.

    The workhorse of the per-family refinement, and of a device profile (which refines one device's
    parameters from its own microbenchmarks and step times)."""
    names = list(names)
    lo = np.array([np.log10(bounds[n][0] / getattr(start, n)) for n in names])
    hi = np.array([np.log10(bounds[n][1] / getattr(start, n)) for n in names])
    lo, hi = np.minimum(lo, -1e-6), np.maximum(hi, 1e-6)

    def params_of(x: np.ndarray) -> EffParams:
        return start.with_(**{n: float(getattr(start, n) * 10 ** x[i]) for i, n in enumerate(names)})

    def residuals(x: np.ndarray) -> np.ndarray:
        params = params_of(x)
        fit = _log_residuals(points, lambda _pt: params)
        return np.concatenate([fit, np.sqrt(ridge) * x])

    sol = least_squares(residuals, np.zeros(len(names)), bounds=(lo, hi), loss="soft_l1", f_scale=0.1,
                        diff_step=1e-3, max_nfev=max_nfev)
    return params_of(sol.x)


def _fit_family(points: list[Measured], glob: EffParams) -> dict[str, float]:
    fitted = fit_params(points, glob, FAMILY_PARAMS, FAMILY_RIDGE)
    return {n: getattr(fitted, n) for n in FAMILY_PARAMS}


def fit_calibration(points: list[Measured], source: str = "calibration.jsonl",
                    base: EffParams | None = None) -> Calibration:
    """Global fit, then one refinement per vendor, then one per hardware family relative to its vendor."""
    base = base or EffParams()
    points = [p for p in points if p.scenario in FIT_SCENARIOS]   # serving rows are checked, never fitted
    glob = _fit_global(points, base)
    by_vendor: dict[str, list[Measured]] = {}
    by_family: dict[str, list[Measured]] = {}
    for pt in points:
        by_vendor.setdefault(vendor_key(pt.plan.chip), []).append(pt)
        by_family.setdefault(pt.family, []).append(pt)
    vendors = {v: _fit_family(pts, glob) for v, pts in sorted(by_vendor.items()) if len(pts) >= MIN_FAMILY_POINTS}
    families: dict[str, dict[str, float]] = {}
    for fam, pts in sorted(by_family.items()):
        if len(pts) >= MIN_FAMILY_POINTS:
            parent = glob.with_(**vendors.get(vendor_key(pts[0].plan.chip), {}))
            families[fam] = _fit_family(pts, parent)
    provenance = {
        "data": source,
        "points": len(points),
        "hardware": sorted({p.hardware for p in points}),
        "per_vendor_points": {v: len(p) for v, p in sorted(by_vendor.items())},
        "per_family_points": {f: len(p) for f, p in sorted(by_family.items())},
        "scenarios": sorted({p.scenario for p in points}),
        "method": "scipy least_squares, soft_l1 on log(pred/measured); global stage, then per-vendor and per-family "
                  f"ridge stages (weight {FAMILY_RIDGE}, min {MIN_FAMILY_POINTS} points)",
        "date": date.today().isoformat(),
        "priors": asdict(base),
    }
    return Calibration(glob, families, provenance, vendors)
