"""Fit the power model's busy floor on measured GPU power; write it to `catalog/data/power_fit.json`.

The component model (pJ per FLOP by precision and node, pJ per DRAM/SRAM/link bit, idle power) counts what the
arithmetic and the DRAM spend, and falls well short of what a GPU draws: at batch 1 an H100 decoding an 8B model
draws ~360-410 W where idle and the components give ~150 W. What closes it is the busy floor
(`perf/energy.py`): the watts beyond idle a chip draws while its kernels run, a share of its TDP. A second figure
scaling the component energies was tried and left out: on these rows the fit cannot tell it from the floor (the
loss is flat from 0.5x to 1.5x), so the sourced component energies stand as they are. The floor is fitted by least
squares on log error of average power on LLM-Inference-Bench (`data/measured/energy-llm-inference-bench.csv`: A100
and H100, vLLM and TensorRT-LLM, batch 1-64, NVML GPU power of a single-GPU run), checked by refitting without each
GPU, and reported against `data/measured/energy.csv` (ML.ENERGY GPU power, MLPerf Power at the wall), never fitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from tokenfab import catalog
from tokenfab.calibrate.profile import write_json_atomic
from tokenfab.energy_check import bench_queries, check, check_bench, median_abs_error
from tokenfab.perf import energy as E
from tokenfab.predict import predict_one
from tokenfab.silicon import resolve_chip

ROOT = Path(__file__).resolve().parents[2]
FIT_DATA = ROOT / "data" / "measured" / "energy-llm-inference-bench.csv"
CHECK_DATA = ROOT / "data" / "measured" / "energy.csv"
BOUNDS = (0.0, 0.85)


@contextmanager
def _figures(floor: float) -> Iterator[None]:
    """Predictions made with this busy floor in place of the shipped one."""
    saved = E.power_fit
    E.power_fit = lambda: {"busy_floor_share": floor}
    try:
        yield
    finally:
        E.power_fit = saved


@dataclass(frozen=True)
class PowerTerms:
    """One measured row: its power, and the model's power split into the parts the figures multiply."""

    measured_w: float
    busy_w: float       # the TDP x the share of time kernels run
    component_w: float  # idle plus the component model's dynamic power
    cap_w: float

    def predict(self, floor: float) -> float:
        return min(self.component_w + floor * self.busy_w, self.cap_w)


def _power(q) -> float:
    return float(predict_one(q)["predicted"]["avg_power_w"])


def terms(path: Path = FIT_DATA) -> list[PowerTerms]:
    """Each row's power at two settings of the floor, solved for its parts (a small setting, so that no step
    reaches the power limit and the parts add up)."""
    out = []
    for row, q in bench_queries(path):
        energy = resolve_chip(q.hardware).energy
        assert energy is not None
        with _figures(0.0):
            base = _power(q)
        with _figures(0.1):
            floor = _power(q)
        out.append(PowerTerms(float(row["avg_power_w"]), (floor - base) / 0.1, base, energy.cap_w))
    return out


def fit(rows: list[PowerTerms]) -> dict[str, float]:
    """The busy floor minimising the summed squared log error of average power."""
    best = minimize_scalar(lambda f: float(sum(np.log(r.predict(f) / r.measured_w) ** 2 for r in rows)),
                           bounds=BOUNDS, method="bounded", options={"xatol": 1e-6})
    return {"busy_floor_share": float(best.x)}


def write_fit(path: Path | None = None) -> dict[str, object]:
    """Fit on the fit data, check on the check data with the new figures, write the file (atomically)."""
    rows = terms()
    figures = fit(rows)
    fit_err = [r.predict(figures["busy_floor_share"]) / r.measured_w - 1 for r in rows]
    hardware = [q.hardware for _row, q in bench_queries(FIT_DATA)]
    by_hw = {}
    for hw in sorted(set(hardware)):
        keep = [r for r, h in zip(rows, hardware, strict=True) if h != hw]
        held = [r for r, h in zip(rows, hardware, strict=True) if h == hw]
        f = fit(keep)
        by_hw[hw] = float(np.median([abs(r.predict(f["busy_floor_share"]) / r.measured_w - 1) for r in held]))
    result: dict[str, object] = {name: {"value": round(v, 6)} for name, v in figures.items()}
    result["fit"] = {"data": "data/measured/energy-llm-inference-bench.csv", "rows": len(rows),
                     "power_median_abs": float(np.median(np.abs(fit_err))),
                     "leave_one_hardware_out_power_median_abs": by_hw,
                     "method": "least squares on log error of average power (bounded scalar search)"}
    write_json_atomic(path or Path(str(catalog.DATA / "power_fit.json")), result)
    catalog.power_fit.cache_clear()
    return result


def report() -> dict[str, dict[str, float]]:
    """Median |error| of J per output token and of average power, by data set and power scope, with the
    shipped figures: the fit data (in sample) and the check data (never fitted)."""
    out: dict[str, dict[str, float]] = {}
    bench = check_bench(FIT_DATA)
    out["fit: LLM-Inference-Bench, accelerator"] = {"j_per_output_token": median_abs_error(bench),
                                                      "avg_power_w": median_abs_error(bench, power=True),
                                                      "rows": float(len(bench))}
    held = [r for r in check(CHECK_DATA) if r.predicted is not None]
    for scope in ("accelerator", "wall"):
        rows = [r for r in held if r.scope == scope]
        out[f"check: energy.csv, {scope}"] = {"j_per_output_token": median_abs_error(rows),
                                              "avg_power_w": median_abs_error(rows, power=True),
                                              "rows": float(len(rows))}
        for source in sorted({_publication(r.source) for r in rows}):
            mine = [r for r in rows if _publication(r.source) == source]
            out[f"check: energy.csv, {scope}, {source}"] = {"j_per_output_token": median_abs_error(mine),
                                                            "avg_power_w": median_abs_error(mine, power=True),
                                                            "rows": float(len(mine))}
    return out


def _publication(source_id: str) -> str:
    """The publication of an energy row (MLPerf rounds share one: `MLPERF_V4.1_0049` -> `MLPERF_V4.1`)."""
    return source_id.rsplit("_", 1)[0] if source_id.startswith("MLPERF") else source_id


__all__ = ["PowerTerms", "fit", "report", "terms", "write_fit"]
