"""Serve Poisson traffic on this machine's GPU (or CPU) with a real continuous-batching loop; JSON to OUTDIR.

    python benchmarks/gpu_serving.py OUTDIR [--device cuda|cpu] [--requests N] [--vary-output]

A random-weight llama-3.1-8b in bf16 (llama-tiny on a CPU) is served by `calibrate/serve_bench.MiniServer`
(TensorRT-LLM's no-evict batching with chunked prefill, 512 prompt / 128 output tokens, max batch 64,
2048 tokens a step in chunks of 128 on a GPU; every step replays a CUDA graph). First a saturation run
(every request at once) gives the capacity; then Poisson runs at 30% to 90% of it. Every step (shape, seconds) and
every request (arrival, first token, finish) goes to OUTDIR/serving.json, to be checked without the GPU by
`python benchmarks/serving_check.py OUTDIR/serving.json`. About 3 minutes on an H100.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout, installed or not

from tokenfab.calibrate.device import hardware_for_gpu, measured_cpu_record, physical_memory_bytes  # noqa: E402
from tokenfab.calibrate.microbench import run_microbench  # noqa: E402
from tokenfab.calibrate.model_bench import TorchLlama  # noqa: E402
from tokenfab.calibrate.profile import write_json_atomic  # noqa: E402
from tokenfab.calibrate.serve_bench import MiniServer, ServeConfig, ServeLog  # noqa: E402
from tokenfab.calibrate.torchenv import describe, open_device  # noqa: E402
from tokenfab.model import load_model  # noqa: E402

LOADS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
SETUP = {  # device -> (model, serve config, requests per Poisson run)
    "cuda": ("llama-3.1-8b", ServeConfig(max_batch=64, token_budget=2048, input_len=512, output_len=128,
                                         chunk_unit=128), 300),
    "cpu": ("llama-tiny", ServeConfig(max_batch=8, token_budget=96, input_len=48, output_len=12, chunk_unit=8), 60),
}


# --vary-output: lognormal output lengths with the fixed length as their mean, clipped to [2, 3x mean]
SIGMA = 0.8


def run_json(name: str, rate: float, log: ServeLog, wall: float) -> dict:
    return {"name": name, "rate": rate, "wall_s": wall, "arrival": log.arrival, "first": log.first,
            "finish": log.finish, "output": log.output, "steps": log.steps, "latencies": log.latencies()}


def output_lengths(rng: np.random.Generator, n: int, mean: int, most: int) -> np.ndarray:
    draws = rng.lognormal(np.log(mean) - SIGMA ** 2 / 2, SIGMA, n)
    return np.clip(np.rint(draws), 2, most).astype(int)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--requests", type=int, default=None, help="requests per Poisson run")
    ap.add_argument("--vary-output", action="store_true",
                    help="draw each request's output length (lognormal, mean the fixed length, up to 3x)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    dev = open_device(args.device, threads=1 if args.device == "cpu" else None)
    model_id, cfg, requests = SETUP[args.device]
    requests = args.requests or requests
    mean_output = cfg.output_len
    if args.vary_output:
        cfg = replace(cfg, output_len=3 * mean_output)
    rng = np.random.default_rng(0)

    def outputs(n: int) -> np.ndarray | None:
        return output_lengths(rng, n, mean_output, cfg.output_len) if args.vary_output else None
    spec = load_model(model_id)
    model = TorchLlama(dev, spec, max_pos=cfg.input_len + cfg.output_len + 1)
    server = MiniServer(model, cfg)
    clock = time.perf_counter    # arrivals are wall-clock events, so steps are timed on the same clock

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {what}", flush=True)

    step_mode = server.capture_graphs()
    progress(f"steps: {step_mode} ({len(server.graph_shapes())} shapes)")

    progress(f"warm-up: {2 * cfg.max_batch} requests at once")
    server.run(np.zeros(2 * cfg.max_batch), clock, outputs(2 * cfg.max_batch))
    n_sat = 4 * cfg.max_batch
    start = time.perf_counter()
    sat = server.run(np.zeros(n_sat), clock, outputs(n_sat))
    makespan = max(sat.finish)
    capacity = n_sat / makespan
    runs = [run_json("saturation", float("inf"), sat, time.perf_counter() - start)]
    progress(f"saturation: {n_sat} requests in {makespan:.2f} s, capacity {capacity:.2f} req/s")
    for load in LOADS:
        rate = load * capacity
        arrivals = np.cumsum(rng.exponential(1.0 / rate, requests))
        arrivals -= arrivals[0]
        start = time.perf_counter()
        log = server.run(arrivals, clock, outputs(requests))
        lat = log.latencies()
        runs.append(run_json(f"load-{load:.2f}", rate, log, time.perf_counter() - start))
        progress(f"load {load:.0%} ({rate:.2f} req/s, {requests} requests): TTFT p50 {lat['ttft_ms_p50']:.1f} ms, "
                 f"TPOT p50 {lat['tpot_ms_p50']:.2f} ms, {len(log.steps)} steps")
    info = describe(dev)
    engine = f"pytorch-{dev.torch.__version__.split('+')[0]}"
    record = None
    if not dev.is_cuda:   # a CPU is described by what it measures, as `calibrate --device cpu` does
        micro = run_microbench(dev, spec, "cpu", engine, ("bf16",))
        record = measured_cpu_record(info["cpu_name"], dev.threads, {"bf16": micro.best_flops["bf16"]},
                                     micro.memcopy_bw, physical_memory_bytes(), info["date"][:10])
    provenance = {**info, "model": model_id, "engine": engine, "steps": step_mode,
                  "hardware": hardware_for_gpu(info["gpu_name"]) if dev.is_cuda else "cpu",
                  "wall_s": time.perf_counter() - t0}
    args.outdir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.outdir / "serving.json", {"provenance": provenance, "chip_record": record,
                                                     "config": asdict(cfg), "capacity_rps": capacity,
                                                     "outputs": (f"lognormal (sigma {SIGMA}), mean {mean_output}, "
                                                                 f"2..{cfg.output_len}" if args.vary_output
                                                                 else "fixed"),
                                                     "loads": list(LOADS), "runs": runs})
    progress(f"wrote {args.outdir / 'serving.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
