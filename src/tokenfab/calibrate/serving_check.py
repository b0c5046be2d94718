"""Check the serving simulator against a real serving run (the log `benchmarks/gpu_serving.py` writes).

The step model is fitted on the steps of some runs (by default the saturation run and the lightest
Poisson run); each run's own arrivals are then replayed through the simulator with the same scheduler
limits, and its TTFT and TPOT set against what the server measured. The runs whose steps were not
fitted are the test: there the simulator's queueing, not the step fit, decides the latencies. Each run
is also replayed with the starting (shipped) step model, unfitted, which shows how a given step-time
error grows with load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from tokenfab.deployment import Deployment
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.params import EffParams
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.step import step_cost
from tokenfab.serve.cluster import Pools
from tokenfab.serve.engine import BLOCK_TOKENS, EngineConfig
from tokenfab.serve.simulate import ClassInfo, simulate
from tokenfab.workload import RequestTable

# what the fit may move (the rest stays at the device's published values), and how far (log10)
FITTED = ("gemm_eff", "mem_eff", "kv_mem_eff", "attn_eff", "elem_scale", "t_step", "t_layer")
RIDGE = 0.02
MAX_FIT_STEPS = 3000
METRICS = ("ttft_ms_p50", "ttft_ms_p90", "tpot_ms_p50", "tpot_ms_p90")


@dataclass(frozen=True)
class RunCheck:
    name: str
    rate: float
    fitted: bool                 # its steps were in the fit
    measured: dict[str, float]
    simulated: dict[str, float]          # with the step model fitted on the server's steps
    unfitted: dict[str, float]           # with the starting step model

    def error(self, metric: str, fitted: bool = True) -> float:
        return (self.simulated if fitted else self.unfitted)[metric] / self.measured[metric] - 1.0


def step_table(steps: list[list[float]]) -> tuple[StepShapes, np.ndarray]:
    """Logged steps (decode seqs, decode context, prompt tokens, prompt pairs, emitted, seconds) as shapes."""
    a = np.asarray(steps, dtype=float).reshape(-1, 6)
    return StepShapes(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4]), a[:, 5]


def fit_steps(model: ModelSpec, chip: Chip, dep: Deployment, shapes: StepShapes, seconds: np.ndarray,
              start: EffParams) -> EffParams:
    """Multiplicative corrections of FITTED to `start`, least squares on log(step time) over every step."""
    lo = np.full(len(FITTED), -1.5)
    hi = np.full(len(FITTED), 1.5)

    def params_of(x: np.ndarray) -> EffParams:
        return start.with_(**{n: float(getattr(start, n) * 10 ** x[i]) for i, n in enumerate(FITTED)})

    def residuals(x: np.ndarray) -> np.ndarray:
        t = step_cost(model, chip, dep, shapes, params_of(x)).time
        return np.concatenate([np.log(t / seconds), np.sqrt(RIDGE) * x])

    sol = least_squares(residuals, np.zeros(len(FITTED)), bounds=(lo, hi), loss="soft_l1", f_scale=0.05,
                        diff_step=1e-3, max_nfev=300)
    return params_of(sol.x)


def engine_limits(config: dict[str, int]) -> EngineConfig:
    """The server's limits as the simulator's engine config: no-evict slots for whole prompt + output."""
    slot = config["input_len"] + config["output_len"] + BLOCK_TOKENS
    return EngineConfig(kv_tokens=config["max_batch"] * slot, max_batch=config["max_batch"],
                        token_budget=config["token_budget"], reserve_full=True, prefix_caching=False,
                        chunk_unit=config.get("chunk_unit", 1))


def simulate_run(model: ModelSpec, chip: Chip, dep: Deployment, config: dict[str, int], arrivals: list[float],
                 params: EffParams, outputs: list[int] | None = None) -> dict[str, float]:
    """The simulator's TTFT/TPOT for the run's own arrivals (and output lengths, where they varied)."""
    n = len(arrivals)
    table = RequestTable.single_turn(np.asarray(arrivals), np.full(n, config["input_len"]),
                                     np.asarray(outputs) if outputs is not None else np.full(n, config["output_len"]))
    res = simulate(model, chip, dep, [table], [ClassInfo("all")], Pools(replicas=1), params,
                   cfg=engine_limits(config))
    return {k: float(res.metrics[k]) for k in METRICS}


def check_log(data: dict[str, Any]) -> None:
    """Raise ValueError unless every run lists one arrival, first token, finish (and output length, where
    given) per request: the replay pairs them up."""
    for r in data["runs"]:
        n = len(r["arrival"])
        if len(r["first"]) != n or len(r["finish"]) != n or len(r.get("output", r["arrival"])) != n:
            raise ValueError(f"run {r['name']!r}: arrival, first, finish and output need one entry per request")


def check(data: dict[str, Any], model: ModelSpec, chip: Chip, dep: Deployment, start: EffParams,
          fit_runs: tuple[str, ...] | None = None) -> tuple[EffParams, list[RunCheck], dict[str, float]]:
    """Fit on `fit_runs` (default: saturation and the lightest load), replay every run (fitted and with
    `start`). Also returns the step models' median |error| on the steps the fit did not see."""
    runs = data["runs"]
    fit_runs = fit_runs or (runs[0]["name"], runs[1]["name"])
    fit_steps_all = [s for r in runs if r["name"] in fit_runs for s in r["steps"]]
    rng = np.random.default_rng(0)
    if len(fit_steps_all) > MAX_FIT_STEPS:
        keep = rng.choice(len(fit_steps_all), MAX_FIT_STEPS, replace=False)
        fit_steps_all = [fit_steps_all[i] for i in sorted(keep)]
    params = fit_steps(model, chip, dep, *step_table(fit_steps_all), start)
    held = [s for r in runs if r["name"] not in fit_runs for s in r["steps"]]
    step_err = {}
    if held:
        shapes, seconds = step_table(held)
        err = np.abs(step_cost(model, chip, dep, shapes, params).time / seconds - 1.0)
        prompt = shapes.prefill_tokens > 0
        step_err["held_out_step_median_abs"] = float(np.median(err))
        unfitted = step_cost(model, chip, dep, shapes, start).time
        step_err["unfitted_step_median"] = float(np.median(unfitted / seconds - 1.0))
        for name, rows in (("decode_only", ~prompt), ("with_prompt", prompt)):
            if rows.any():
                step_err[f"held_out_{name}_median_abs"] = float(np.median(err[rows]))
    checks = []
    for r in runs:
        if not np.isfinite(r["rate"]):
            continue          # everything at once: a capacity run, not a latency one
        sim = simulate_run(model, chip, dep, data["config"], r["arrival"], params, r.get("output"))
        unfitted = simulate_run(model, chip, dep, data["config"], r["arrival"], start, r.get("output"))
        checks.append(RunCheck(r["name"], r["rate"], r["name"] in fit_runs,
                               {k: r["latencies"][k] for k in METRICS}, sim, unfitted))
    return params, checks, step_err


__all__ = ["RunCheck", "check", "check_log", "engine_limits", "fit_steps", "simulate_run", "step_table"]
