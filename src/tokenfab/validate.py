"""Predictions against measured data: error tables, and leave-one-hardware-out refits.

Error of one query = pred / measured - 1. Tables report, per group, the count, the median and 90th
percentile of |error| and the signed bias (median error; positive = predicts more than measured).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from tokenfab import bands, catalog
from tokenfab.calibrate.fit import Measured, fit_calibration
from tokenfab.perf.params import Calibration


@dataclass(frozen=True)
class Scored:
    """One measured query with its prediction."""

    id: str
    scenario: str
    hardware: str
    metric: str
    measured: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1.0


@dataclass(frozen=True)
class ErrorRow:
    scenario: str
    hardware: str
    metric: str
    count: int
    median_abs: float
    p90_abs: float
    bias: float


def score_in_sample(points: Iterable[Measured], calibration: Calibration) -> list[Scored]:
    """Predict every point with one calibration."""
    out = []
    for pt in points:
        pred = pt.plan.evaluate(calibration.for_chip(pt.plan.chip))[pt.metric]
        out.append(Scored(pt.id, pt.scenario, pt.hardware, pt.metric, pt.value, float(pred)))
    return out


def score_leave_one_hardware_out(points: list[Measured], progress: Callable[[str], None] | None = None,
                                 fit_only: list[Measured] | None = None) -> list[Scored]:
    """Refit without each hardware in turn and predict that hardware with the refit. `fit_only`: more
    measurements every refit uses (bar the held-out hardware's) that are not scored themselves."""
    scored: list[Scored] = []
    pool = points + (fit_only or [])
    for hw in sorted({p.hardware for p in points}):
        if progress:
            progress(hw)
        held = [p for p in points if p.hardware == hw]
        cal = fit_calibration([p for p in pool if p.hardware != hw], source=f"calibration without {hw}")
        scored.extend(score_in_sample(held, cal))
    return scored


# rows timed by the step model alone (no queue): their errors are the step model's own
ENGINE_SCENARIOS = ("offline", "static", "prefill")


def step_time_errors(scored: Iterable[Scored]) -> np.ndarray:
    """Predicted / measured step time - 1 of each engine row: a throughput that comes out high is a step
    time that comes out low."""
    return np.array([(s.measured / s.predicted if "per_s" in s.metric else s.predicted / s.measured) - 1.0
                     for s in scored if s.scenario in ENGINE_SCENARIOS])


def _stats(errors: list[float]) -> tuple[int, float, float, float]:
    e = np.asarray(errors)
    return len(e), float(np.median(np.abs(e))), float(np.percentile(np.abs(e), 90)), float(np.median(e))


def error_table(scored: list[Scored]) -> list[ErrorRow]:
    """Rows per scenario x hardware x metric, then per scenario, then the overall line."""
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for s in scored:
        groups[(s.scenario, s.hardware, s.metric)].append(s.error)
        groups[(s.scenario, "all", "all")].append(s.error)
        groups[("all", "all", "all")].append(s.error)
    order = sorted(groups, key=lambda k: (k[0] == "all", k[0], k[1] == "all", k[1], k[2]))
    return [ErrorRow(*k, *_stats(groups[k])) for k in order]


def band_coverage(scored: list[Scored], held_out: bool) -> dict[str, dict[str, float]]:
    """Share of measured values inside their P10-P90 band, by answer group (engine, serving, capacity).
    `held_out`: the predictions are leave-one-hardware-out, so each accelerator is judged by bands computed
    from the other accelerators' residuals (nested); otherwise by the shipped bands."""
    rows = [(s.hardware, s.scenario, s.metric, s.measured, s.predicted) for s in scored]
    return bands.coverage(rows, None if held_out else catalog.error_bands())


def summary(scored: list[Scored], scenarios: Iterable[str], hardware: str | None = None) -> tuple[int, float]:
    """Count and median |error| over the given scenarios (and one hardware, if named)."""
    keep = set(scenarios)
    errs = [abs(s.error) for s in scored if s.scenario in keep and (hardware is None or s.hardware == hardware)]
    return len(errs), float(np.median(errs)) if errs else float("nan")
