"""Measure one device end to end: microbenchmarks, then the model's step-time grid.

Shared by `tokenfab calibrate --device` and `benchmarks/gpu_calibrate.py`. What comes out is data
only (query rows, microbenchmark figures, the chip and provenance); fitting is `profile.fit_device`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenfab.calibrate.device import hardware_for_gpu, measured_cpu_record, physical_memory_bytes
from tokenfab.calibrate.microbench import GQA_NATIVE, Microbench, fp8_available, run_microbench
from tokenfab.calibrate.model_bench import CPU_GRID, GPU_GRID, StepGrid, TorchLlama, check_llama, step_row, time_steps
from tokenfab.calibrate.torchenv import DeviceError, describe, open_device
from tokenfab.hardware import Chip, chip_from_record, load_chip
from tokenfab.model import ModelSpec, load_model

DEFAULT_MODEL = {"cuda": "llama-3.1-8b", "cpu": "llama-tiny"}
CPU_THREADS = 1   # one core: steadier timings, and the machine stays usable


@dataclass
class DeviceRun:
    """Everything measured on one device, ready to fit."""

    chip: Chip
    chip_record: dict[str, Any] | None     # set when the chip is not a catalog accelerator (a CPU)
    spec: ModelSpec
    model: str
    microbench: Microbench
    steps: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


def measure(device: str, hardware: str | None = None, model: str | None = None, grid: StepGrid | None = None,
            threads: int | None = None, progress: Callable[[str], None] | None = None) -> DeviceRun:
    """Open the device, run the microbenchmarks and the step grid (raises `DeviceError` on bad input)."""
    if device == "cpu" and hardware:
        raise DeviceError("--hardware applies to --device cuda; a CPU is described by what it measures")
    dev = open_device(device, threads=threads or (CPU_THREADS if device == "cpu" else None))
    model = model or DEFAULT_MODEL[device]
    try:
        spec = load_model(model)
        check_llama(spec)
    except (KeyError, ValueError) as err:
        raise DeviceError(str(err)) from None
    info = describe(dev)
    torch = dev.torch
    engine = f"pytorch-{torch.__version__.split('+')[0]}"
    if dev.is_cuda:
        try:
            hw = hardware_for_gpu(info["gpu_name"], hardware)
        except KeyError as err:
            raise DeviceError(str(err.args[0])) from None
        chip: Chip | None = load_chip(hw)
        precisions = ("bf16", "fp8") if fp8_available(dev) and chip.supports("fp8") else ("bf16",)
    else:
        hw, chip, precisions = "cpu", None, ("bf16",)
    grid = grid or (GPU_GRID if dev.is_cuda else CPU_GRID)
    if dev.is_cuda:
        grid = _fit_memory(dev, spec, grid)

    if progress:
        progress("microbenchmarks")
    t0 = time.perf_counter()
    micro = run_microbench(dev, spec, hw, engine, precisions)
    t1 = time.perf_counter()
    record = None
    if chip is None:
        record = measured_cpu_record(info["cpu_name"], dev.threads, {"bf16": micro.best_flops["bf16"]},
                                     micro.memcopy_bw, physical_memory_bytes(), info["date"][:10])
        chip = chip_from_record(record)

    if progress:
        progress(f"building {model} with random weights")
    max_pos = max([n + 1 for _b, n in grid.decode_points()] + [n for _b, n in grid.prefill_points()])
    llama = TorchLlama(dev, spec, max_pos)
    steps = [step_row(st, hw, model, engine) for st in time_steps(llama, grid, progress)]
    del llama
    if dev.is_cuda:
        torch.cuda.empty_cache()
    info.update({"model": model, "engine": engine, "precisions": list(precisions), "grid": grid.__dict__,
                 "wall_s": {"microbench": t1 - t0, "steps": time.perf_counter() - t1},
                 "gqa_attention": "native" if GQA_NATIVE.get(dev.kind, True) else "K/V repeated per head"})
    return DeviceRun(chip, record, spec, model, micro, steps, info)


def _fit_memory(dev: Any, spec: ModelSpec, grid: StepGrid) -> StepGrid:
    """Shrink the decode cap so weights + KV cache stay within 80% of the GPU's free memory."""
    free, _total = dev.torch.cuda.mem_get_info(dev.device)
    weights = spec.total_params * 2.0
    kv_tokens = int(max(0.8 * free - weights, 0) / spec.kv_bytes_per_token("bf16"))
    return replace(grid, max_decode_tokens=kv_tokens) if kv_tokens < grid.max_decode_tokens else grid


def load_run(outdir: Path) -> DeviceRun:
    """The measurements a previous run saved in `outdir` (microbench.json, steps.jsonl), as they came off
    the device: refitting needs no GPU, so a shipped GPU run stays checkable in CI."""
    saved = json.loads((outdir / "microbench.json").read_text())
    steps = [json.loads(line) for line in (outdir / "steps.jsonl").read_text().splitlines() if line.strip()]
    record = saved.pop("chip_record", None)
    provenance = saved.pop("provenance")
    chip = chip_from_record(record) if record else load_chip(steps[0]["hardware"])
    return DeviceRun(chip, record, load_model(provenance["model"]), provenance["model"], Microbench(**saved), steps,
                     provenance)
