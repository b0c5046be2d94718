"""The step model's own error, carried to the latencies it predicts.

Near saturation a serving latency moves several times faster than the step time that sets the capacity:
on our H100 serving run a step model 22% low gave TPOT 16% low at 30% load and 44% low at 90%. So a
serving prediction is only as sure as the step model under it, amplified by the queue. The band reruns
the prediction with every step slower and faster by the step model's held-out error (leave-one-hardware-out,
P10 and P90 of predicted / measured step time, `catalog/data/step_error.json`), and reports the two answers
around the nominal one.
"""

from __future__ import annotations

from collections.abc import Callable

from tokenfab import catalog
from tokenfab.perf.params import EffParams


def band_scales() -> tuple[float, float]:
    """(faster, slower) multipliers on every step's time: the true step time if the model errs as its P90
    (predicts too slow), then as its P10 (too fast)."""
    err = catalog.step_error()
    return 1.0 / (1.0 + err["p90"]), 1.0 / (1.0 + err["p10"])


def band_params(params: EffParams) -> tuple[EffParams, EffParams]:
    """`params` with the step time scaled to each end of the band."""
    fast, slow = band_scales()
    return params.with_(time_scale=params.time_scale * fast), params.with_(time_scale=params.time_scale * slow)


def metric_band(evaluate: Callable[[EffParams], dict[str, float]], params: EffParams,
                metrics: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """(low, high) of each metric over the two band runs, ordered (a throughput falls as steps slow down,
    a latency rises)."""
    fast, slow = (evaluate(p) for p in band_params(params))
    return {m: (min(fast[m], slow[m]), max(fast[m], slow[m])) for m in metrics}
