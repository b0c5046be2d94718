"""Time MoE and MLA decoder-layer steps on this machine's GPU (or CPU), with GPU power; outputs to OUTDIR.

    python benchmarks/gpu_moe_layers.py OUTDIR [--device cuda|cpu] [--hardware ID] [--budget-s N]

Layers (random weights, see tokenfab.calibrate.moe_bench): one DeepSeek-V3 layer (MLA, 256 routed experts top-8
plus a shared expert) and one Qwen3-30B-A3B layer (GQA, 128 experts top-8), at full size on a GPU (experts
halved only where memory demands it) and at toy width on a CPU. For each layer, bf16 then fp8 routed-expert
weights (where the GPU has fp8 GEMMs), each with uniform then skewed routing, over decode batch 1..512 x
context 512..8192 and prefill chunks of 512..8192 tokens. Every point is timed (CUDA graph, CUDA events, warm-up,
median of repeats), then run for --power-s seconds under NVML.

Writes to OUTDIR:
  moe-steps.jsonl   one `layer` query row per point (metric layer_ms); avg_power_w, joules_per_step, clocks and
                    the power method as extra keys (the query schema ignores them)
  moe-power.json    power method, power limit, idle power, and each point's power reading
  moe-env.json      GPU, driver, torch/CUDA versions, date, kernels used, layer configs actually used, grid,
                    what was skipped and why, wall time
  models/*.json     configs of the layers that differ from the shipped ones (toy width, fewer experts); the rows
                    name these files as their model
Check later without the GPU (GPU rows name catalog chips and models):
  tokenfab validate --data OUTDIR/moe-steps.jsonl
Expected wall time on an H100/H200: about 2-3 minutes; it stops at --budget-s (default 300) and writes what it
has. On a CPU: seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout, installed or not

from tokenfab import catalog  # noqa: E402
from tokenfab.calibrate.device import hardware_for_gpu  # noqa: E402
from tokenfab.calibrate.moe_bench import (  # noqa: E402
    CPU_GRID,
    GPU_GRID,
    LayerGrid,
    arch_name,
    fit_experts,
    layer_bytes,
    layer_config,
    layer_row,
    layer_spec,
    run_grid,
)
from tokenfab.calibrate.moe_layers import (  # noqa: E402
    ROUTINGS,
    ZIPF_S,
    MoEBenchError,
    MoEDecoderLayer,
    fp8_kernel,
    grouped_kernel,
)
from tokenfab.calibrate.power import PowerMeter  # noqa: E402
from tokenfab.calibrate.profile import write_json_atomic, write_jsonl_atomic  # noqa: E402
from tokenfab.calibrate.torchenv import DeviceError, TorchDevice, describe, open_device  # noqa: E402
from tokenfab.model import ModelSpec  # noqa: E402

MODELS = ("deepseek-v3", "qwen3-30b-a3b")
RESERVE_S = 3.0   # left at the end of the budget for writing the files
SIMPLIFICATIONS = (
    "DeepSeek-V3's group-limited routing (n_group 8, topk_group 4) is not applied: plain top-k over all experts",
    "rotary embeddings in half-rotation form (DeepSeek's interleaved form and YaRN scaling cost the same)",
    "Qwen3's per-head q/k RMSNorm is left out (two small elementwise kernels)",
    "attention is torch SDPA (backend torch's choice), not FlashMLA/FlashInfer; the shared expert stays bf16",
    "layer input is a random residual stream; the KV/latent cache is random, as if a prompt had run",
)


class Budget:
    """Says stop when the next point, assumed as long as the last one, would end past the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline, self.last, self.step = deadline, time.perf_counter(), 0.0
        self.stopped = False

    def __call__(self) -> bool:
        now = time.perf_counter()
        self.step, self.last = now - self.last, now
        if now + self.step + RESERVE_S > self.deadline:
            self.stopped = True
        return not self.stopped

    def left(self) -> float:
        return self.deadline - RESERVE_S - time.perf_counter()


def gpu_uuid(dev: TorchDevice) -> str | None:
    uuid = getattr(dev.torch.cuda.get_device_properties(dev.device), "uuid", None)
    return str(uuid) if uuid is not None else None


def choose_layer(dev: TorchDevice, model_id: str, grid: LayerGrid) -> tuple[dict[str, Any], str, ModelSpec, str]:
    """(config, name, spec, why) of the layer to build: toy width on a CPU; on a GPU the shipped config, with the
    experts halved until weights, cache and activations fit 80% of the free memory."""
    if not dev.is_cuda:
        cfg, name = layer_config(model_id, tiny=True)
        return cfg, name, layer_spec(cfg, name), "CPU run: toy width (few experts, small hidden)"
    cfg, name = layer_config(model_id)
    spec = layer_spec(cfg, name)
    free, _total = dev.torch.cuda.mem_get_info(dev.device)
    experts = fit_experts(spec, grid, free)
    if experts == spec.experts:
        return cfg, name, spec, "shipped config"
    cfg, name = layer_config(model_id, experts=experts)
    return cfg, name, layer_spec(cfg, name), (f"experts cut from {spec.experts} to {experts}: "
                                             f"{free / 2**30:.0f} GiB free on the GPU")


def layer_json(spec: ModelSpec, model_id: str, ref: str, why: str, grid: LayerGrid) -> dict[str, Any]:
    keys = ("hidden", "heads", "kv_heads", "head_dim", "v_head_dim", "experts", "top_k", "expert_intermediate",
            "shared_experts", "shared_expert_intermediate", "mla_kv_rank", "mla_rope_dim", "mla_q_rank")
    return {"model": model_id, "model_ref": ref, "architecture": arch_name(spec), "why": why,
            "spec": {k: getattr(spec, k) for k in keys},
            "bytes_at_largest_point": layer_bytes(spec, grid)}


def _bad_argument(args: argparse.Namespace) -> str | None:
    """The one line that says which argument cannot be used, checked before anything runs or is written."""
    if not (math.isfinite(args.budget_s) and args.budget_s > 0):
        return f"--budget-s = {args.budget_s:g}: seconds, more than 0"
    if not (math.isfinite(args.power_s) and args.power_s >= 0):
        return f"--power-s = {args.power_s:g}: seconds, 0 or more"
    if not (math.isfinite(args.zipf_s) and args.zipf_s >= 0):
        return f"--zipf-s = {args.zipf_s:g}: a skew exponent, 0 or more"
    if args.hardware:
        try:
            catalog.accelerator(args.hardware)
        except KeyError as err:
            return f"--hardware: {err}"
    models = [m for m in args.models.split(",") if m]
    if not models:
        return "--models: give at least one MoE model id"
    for model_id in models:
        try:
            layer_config(model_id)
        except (MoEBenchError, KeyError, ValueError) as err:
            return f"--models: {model_id!r}: {err.args[0] if isinstance(err, KeyError) else err}"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--hardware", default=None, help="catalog id, when the GPU's name is not recognised")
    ap.add_argument("--budget-s", type=float, default=300.0, help="stop and write what was measured by then")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated MoE model ids")
    ap.add_argument("--power-s", type=float, default=0.5, help="seconds each point runs under the power meter")
    ap.add_argument("--zipf-s", type=float, default=ZIPF_S, help="skewed routing: logit bias -s ln(rank)")
    args = ap.parse_args(argv)
    problem = _bad_argument(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    budget = Budget(t0 + args.budget_s)
    out = args.outdir
    out.mkdir(parents=True, exist_ok=True)

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {what}", flush=True)

    try:
        dev = open_device(args.device, threads=1 if args.device == "cpu" else None)
        info = describe(dev)
        hardware = hardware_for_gpu(info["gpu_name"], args.hardware) if dev.is_cuda else "cpu"
    except (DeviceError, KeyError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    torch = dev.torch
    engine = f"pytorch-{torch.__version__.split('+')[0]}"
    grid = GPU_GRID if dev.is_cuda else CPU_GRID
    max_pos = max([n + 1 for _p, _b, n in grid.points()])

    meter = PowerMeter(uuid=gpu_uuid(dev)) if dev.is_cuda else None
    power: dict[str, Any] = {"meter": meter.info() if meter else {
        "method": "unavailable", "reason": "--device cpu: GPU power is not measured on a CPU run"}}
    if meter is not None and meter.available:
        progress(f"idle power ({power['meter']['method']})")
        power["idle"] = meter.idle(1.0).to_json()
    else:
        progress(f"no power readings: {power['meter']['reason']}")
    kernel, graphable, why = grouped_kernel(dev)
    fp8, fp8_graphable, fp8_why = fp8_kernel(dev)
    progress(f"experts: {why}; fp8: {fp8_why}")

    env: dict[str, Any] = {
        **info, "hardware": hardware, "engine": engine,
        "kernels": {"bf16": {"kernel": kernel, "graphable": graphable, "why": why},
                    "fp8": {"kernel": fp8, "graphable": fp8_graphable, "why": fp8_why}},
        "grid": asdict(grid), "routings": list(ROUTINGS), "zipf_s": args.zipf_s, "power_s": args.power_s,
        "budget_s": args.budget_s, "layers": {}, "skipped": [], "simplifications": list(SIMPLIFICATIONS),
    }
    rows: list[dict[str, Any]] = []
    readings: list[dict[str, Any]] = []

    def save() -> None:
        env["wall_s"] = time.perf_counter() - t0
        env["points"] = len(rows)
        env["stopped_at_budget"] = budget.stopped
        write_jsonl_atomic(out / "moe-steps.jsonl", rows)
        write_json_atomic(out / "moe-power.json", {**power, "points": readings})
        write_json_atomic(out / "moe-env.json", env)

    models = [m for m in args.models.split(",") if m]
    plans = [(m, "bf16") for m in models] + [(m, "fp8") for m in models]
    for model_id, precision in plans:
        if precision == "fp8" and fp8 is None:
            env["skipped"].append(f"{model_id} fp8: {fp8_why}")
            continue
        if budget.left() <= 0 or budget.stopped:
            env["skipped"].append(f"{model_id} {precision}: time budget spent")
            budget.stopped = True
            continue
        try:
            cfg, name, spec, choice = choose_layer(dev, model_id, grid)
        except (MoEBenchError, KeyError, ValueError) as err:
            env["skipped"].append(f"{model_id}: {err}")
            continue
        ref = model_id
        if name != model_id:
            (out / "models").mkdir(exist_ok=True)
            path = out / "models" / f"{name}.json"
            path.write_text(json.dumps(cfg, indent=1) + "\n")
            ref = str(path)   # as OUTDIR was given: relative paths stay valid where the folder is copied with its tree
        env["layers"][name] = layer_json(spec, model_id, ref, choice, grid)
        progress(f"building {name} ({arch_name(spec)}, {spec.experts} experts) in {precision}")
        try:
            layer = MoEDecoderLayer(dev, spec, cfg, max_pos, kernel=kernel)
            if precision == "fp8":
                layer.moe.to_fp8(fp8)
        except RuntimeError as err:
            env["skipped"].append(f"{name} {precision}: building the layer failed: {str(err).splitlines()[0][:160]}")
            continue
        for routing in ROUTINGS:
            layer.moe.set_routing(routing, args.zipf_s)
            ok = fp8_graphable if precision == "fp8" else graphable
            times, failed = run_grid(layer, grid, ok, precision, meter, args.power_s, budget, progress)
            env["skipped"].extend(failed)
            for lt in times:
                row = layer_row(lt, hardware, name, ref, engine, arch_name(spec))
                rows.append(row)
                if lt.power is not None:
                    readings.append({"id": row["id"], **lt.power.to_json()})
            save()
        del layer
        if dev.is_cuda:
            torch.cuda.empty_cache()
    if budget.stopped:
        env["skipped"].append("stopped at the time budget: later points not measured")
    save()
    if meter is not None:
        meter.close()
    progress(f"wrote {len(rows)} layer rows to {out / 'moe-steps.jsonl'}"
             + (" (stopped at the time budget)" if budget.stopped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
