"""Fit a device's measurements into the model's efficiency parameters, and store them as a profile.

Two stages, both the `fit_params` refinement the published fit uses (log-ratio residuals, soft-L1,
ridge towards the starting values):

1. microbenchmarks: the GEMM and memcopy rows fit the GEMM, memory and kernel parameters, starting
   from the published fit of the device's family (or the global one); attention and launch timings set
   the starting values of `attn_eff`, `kv_mem_eff`, `t_kernel` and `t_step`;
2. step times: the measured decode and prefill steps refine every step-time parameter from there.

The profile is the shipped calibration plus overrides for this one device id (and, for a CPU, its
measured chip record), so `predict --calibration profile.json` changes that device's answers only.
It records the device's name, driver, library versions and date.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tokenfab.calibrate.fit import BOUNDS, Measured, fit_params, load_measured
from tokenfab.calibrate.microbench import Microbench
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.params import Calibration, EffParams

# Device-specific parameters (engine-, MoE- and fabric-specific ones stay as published).
MICRO_PARAMS = ("gemm_eff", "lowp_ratio", "gemm_m_half", "roof_q", "mem_eff", "t_kernel")
# step times refine the engine's GEMM efficiency relative to the stand-alone GEMMs the microbenchmarks measured
STEP_PARAMS = ("engine_gemm_ratio", "gemm_m_half", "roof_q", "mem_eff", "kv_mem_eff", "attn_eff", "elem_scale",
               "t_step", "t_layer")
DEVICE_PARAMS = tuple(dict.fromkeys(MICRO_PARAMS + STEP_PARAMS))
# A bare PyTorch loop (eager on a CPU, no engine scheduler, PyTorch's own attention kernels) sits outside
# the published engines' ranges, so the bounds are wider here: fixed costs up to milliseconds, and
# efficiencies down to a few percent (a CPU's attention is far from its streaming bandwidth).
DEVICE_BOUNDS = {**BOUNDS, "t_step": (1e-6, 5e-2), "t_layer": (1e-7, 5e-3), "t_kernel": (1e-7, 1e-3),
                 "gemm_m_half": (0.5, 1024.0), "elem_scale": (0.1, 50.0), "roof_q": (1.2, 12.0),
                 "gemm_eff": (0.05, 1.0), "engine_gemm_ratio": (0.05, 2.0), "mem_eff": (0.1, 1.0),
                 "kv_mem_eff": (0.02, 1.0), "attn_eff": (0.01, 0.95)}
MICRO_RIDGE = 0.01   # weak pull towards the published values: the microbenchmarks decide
STEP_RIDGE = 0.02
METHOD = ("scipy least_squares, soft_l1 on log(pred/measured): microbenchmark rows fit "
          f"{', '.join(MICRO_PARAMS)} (ridge {MICRO_RIDGE}), then step-time rows refine "
          f"{', '.join(STEP_PARAMS)} (ridge {STEP_RIDGE}), starting from the published fit of the device")


def _clip(name: str, value: float) -> float:
    lo, hi = DEVICE_BOUNDS[name]
    return float(np.clip(value, lo, hi))


def plan_rows(rows: Iterable[Mapping[str, Any]], chips: Mapping[str, Chip] | None) -> list[Measured]:
    """Measured rows (query schema with `value`) made ready to fit or score."""
    points, skipped = load_measured((json.dumps(r) for r in rows), chips=chips)
    if skipped:
        first = next(iter(skipped.items()))
        raise ValueError(f"{len(skipped)} measured rows cannot be planned (first: {first[0]}: {first[1]})")
    return points


def priors(start: EffParams, micro: Microbench, chip: Chip, spec: ModelSpec,
           steps: list[Mapping[str, Any]]) -> EffParams:
    """Starting values from the microbenchmarks that have no query scenario (attention, launch cost)."""
    changes: dict[str, float] = {}
    prefill = [a["flops_per_s"] for a in micro.attention if a["phase"] == "prefill"]
    decode = [a["bytes_per_s"] for a in micro.attention if a["phase"] == "decode"]
    if prefill:
        changes["attn_eff"] = _clip("attn_eff", float(np.median(prefill)) / chip.peak("bf16"))
    if decode and micro.memcopy_bw:
        changes["kv_mem_eff"] = _clip("kv_mem_eff", float(np.median(decode)) / micro.memcopy_bw)
    if micro.kernel_s:
        changes["t_kernel"] = _clip("t_kernel", micro.kernel_s)
        changes["t_step"] = _clip("t_step", micro.kernel_s)   # one host round trip per step
    overhead = small_step_overhead(micro, spec, steps)
    if overhead is not None:
        spare = overhead - changes.get("t_step", start.t_step)
        changes["t_layer"] = _clip("t_layer", max(spare, 0.0) / spec.layers)
    return start.with_(**changes)


def small_step_overhead(micro: Microbench, spec: ModelSpec, steps: list[Mapping[str, Any]]) -> float | None:
    """Per-step overhead of a small-batch decode step: the smallest decode step measured, less the time to
    stream the bf16 weights once at the measured copy bandwidth (seconds; None without the data)."""
    small = [r for r in steps if r["scenario"] == "static"]
    if not small or not micro.memcopy_bw:
        return None
    r = min(small, key=lambda r: (r["batch"] * r["input_len"], r["batch"]))
    return max(r["value"] / 1e3 - spec.total_params * 2.0 / micro.memcopy_bw, 0.0)


def fit_device(micro: Microbench, steps: list[Mapping[str, Any]], chip: Chip, spec: ModelSpec, base: Calibration,
               chip_record: dict[str, Any] | None, provenance: Mapping[str, Any]) -> Calibration:
    """A profile for `chip`: `base` plus this device's fitted parameters (see the module docstring)."""
    chips = {chip.id: chip} if chip_record else None
    micro_points = plan_rows(micro.rows, chips)
    step_points = plan_rows(steps, chips)
    start = priors(base.for_chip(chip), micro, chip, spec, steps)
    stage1 = fit_params(micro_points, start, MICRO_PARAMS, MICRO_RIDGE, DEVICE_BOUNDS) if micro_points else start
    fitted = fit_params(step_points, stage1, STEP_PARAMS, STEP_RIDGE, DEVICE_BOUNDS, max_nfev=300)
    prov = {**dict(base.provenance), "device_profile": {
        **dict(provenance), "hardware": chip.id, "method": METHOD,
        "points": {"microbenchmarks": len(micro_points), "steps": len(step_points)},
        "small_decode_step_overhead_s": small_step_overhead(micro, spec, steps),
        "priors": {n: getattr(start, n) for n in DEVICE_PARAMS}}}
    return Calibration(base.global_params, base.family, prov, vendor=base.vendor,
                       hardware={**base.hardware, chip.id: {n: float(getattr(fitted, n)) for n in DEVICE_PARAMS}},
                       chips={**base.chips, **({chip.id: chip_record} if chip_record else {})})


def split_halves(rows: list[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Deterministic fit/check split of a step grid: a checkerboard over (batch rank, length rank) within
    each scenario, so both halves span the whole grid and neither extrapolates."""
    train, test = [], []
    for scenario in sorted({r["scenario"] for r in rows}):
        group = [r for r in rows if r["scenario"] == scenario]
        b_rank = {b: i for i, b in enumerate(sorted({r["batch"] for r in group}))}
        l_rank = {n: i for i, n in enumerate(sorted({r["input_len"] for r in group}))}
        for r in group:
            (train if (b_rank[r["batch"]] + l_rank[r["input_len"]]) % 2 == 0 else test).append(r)
    return train, test


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w") as fh:
            for r in rows:
                fh.write(json.dumps(r, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def profile_json(cal: Calibration, micro: Microbench) -> dict[str, Any]:
    """The profile file: a calibration (what `load_calibration` reads) plus the raw microbenchmarks."""
    return {**cal.to_json(), "microbench": micro.to_json()}


def check_writable(path: Path) -> None:
    """Raise OSError now, before minutes of measuring, if `path` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory")
    if not parent.is_dir():
        raise FileNotFoundError(f"folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"folder {str(parent)!r} is not writable")
