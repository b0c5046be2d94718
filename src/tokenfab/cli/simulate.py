"""`tokenfab simulate`: serve traffic on a cluster of replicas with the discrete-event simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.common import hardware_chip, load_cal
from tokenfab.cli.io import JsonOpt, check_output, err, fail, out, print_json
from tokenfab.cli.options import CalibrationOpt, one_of


def simulate(
    model: Annotated[str, typer.Option(help="zoo model id or config.json path")],
    hardware: Annotated[str, typer.Option(help="catalog id or design YAML / shipped design id")],
    devices: Annotated[int | None, typer.Option(help="chips in all (default: one replica)")] = None,
    tp: Annotated[int, typer.Option(help="tensor-parallel size of one replica")] = 1,
    pp: Annotated[int, typer.Option(help="pipeline-parallel size of one replica")] = 1,
    precision: Annotated[str, typer.Option(help="weight and activation precision",
                                           callback=one_of("tokenfab.units:PRECISION_BYTES"))] = "bf16",
    kv_precision: Annotated[str | None, typer.Option(help="KV-cache precision (default: as precision)",
                                                     callback=one_of("tokenfab.units:PRECISION_BYTES"))] = None,
    engine: Annotated[str, typer.Option(help="engine preset: trtllm, vllm, tgi")] = "vllm",
    max_batch: Annotated[int | None, typer.Option(help="sequences in flight per replica")] = None,
    max_num_tokens: Annotated[int | None, typer.Option(help="token budget per step (chunked prefill)")] = None,
    workload: Annotated[str | None, typer.Option(
        help="traffic: preset (chat, code, rag, reasoning, summarisation, agentic), workload YAML, a trace "
             "(Azure .csv, BurstGPT .csv, Mooncake .jsonl) or ShareGPT .json (with --rate or --concurrency)")] = None,
    tokenizer: Annotated[str | None, typer.Option(
        help="ShareGPT: count tokens with this Hugging Face tokenizer from the local cache "
             "(default: about 4 characters per token)")] = None,
    input_len: Annotated[int | None, typer.Option(help="fixed prompt tokens (instead of --workload)")] = None,
    output_len: Annotated[int | None, typer.Option(help="fixed output tokens (instead of --workload)")] = None,
    rate: Annotated[float | None, typer.Option(help="Poisson arrivals, requests (sessions)/s for the cluster")] = None,
    concurrency: Annotated[int | None, typer.Option(help="closed loop: requests kept in flight")] = None,
    requests: Annotated[int, typer.Option(help="requests to simulate (a trace: all its rows)")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed of the generated traffic")] = 0,
    disaggregate: Annotated[str | None, typer.Option(help="P:D prefill and decode replica pools")] = None,
    router: Annotated[str, typer.Option(help="how arriving requests are spread over the replicas",
                                        callback=one_of("tokenfab.serve.cluster:ROUTERS"))] = "least-outstanding",
    preemption: Annotated[str, typer.Option(help="what becomes of a preempted request's KV cache (vLLM-style engines)",
                                            callback=one_of("tokenfab.serve.simulate:PREEMPTION_MODES"))]
    = "recompute",
    prefix_caching: Annotated[bool, typer.Option(help="reuse cached prompt prefixes")] = True,
    ttft_slo: Annotated[float | None, typer.Option(help="TTFT target, ms (needs --slo-percentile)")] = None,
    tpot_slo: Annotated[float | None, typer.Option(help="TPOT target, ms (needs --slo-percentile)")] = None,
    slo_percentile: Annotated[float | None, typer.Option(help="percentile the SLO holds at, e.g. 99")] = None,
    records: Annotated[Path | None, typer.Option(help="write per-request records to this Parquet file")] = None,
    timeline: Annotated[Path | None, typer.Option(
        help="write a Chrome/Perfetto trace: a track per replica, each request as queue/prefill/decode slices, "
             "batch, KV and queue counters")] = None,
    calibration: CalibrationOpt = None,
    band: Annotated[bool, typer.Option(
        "--band", help="also rerun with every step faster and slower by the step model's held-out error "
                       "(P90, P10) and report each latency's band")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve traffic on a cluster of replicas with the discrete-event simulator: latency, goodput, energy."""
    from tokenfab.deployment import Deployment
    from tokenfab.model import ModelConfigError, load_model
    from tokenfab.serve import runner
    check_output("--records", records)
    check_output("--timeline", timeline)
    try:
        spec = load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    chip = hardware_chip(hardware)
    dep = Deployment(tp=tp, pp=pp, weight_precision=precision, act_precision=precision,
                     kv_precision=kv_precision or precision, engine=engine, max_batch=max_batch,
                     max_num_tokens=max_num_tokens)
    params = load_cal(calibration).for_chip(chip)

    def ms(v: float | None) -> float | None:
        return None if v is None else v / 1e3
    slo = (ms(ttft_slo), ms(tpot_slo), slo_percentile)

    def load() -> Any:   # the same stream each time it is built (seeded; a trace or dataset file is reread)
        return runner.traffic(workload, input_len, output_len, rate, concurrency, requests, seed, slo, tokenizer)
    try:
        traffic = load()
        replica_pools = runner.pools(devices, dep, disaggregate, router)
        with _progress_bar(traffic.requests, quiet=as_json) as tick:
            result = runner.run(spec, chip, dep, traffic, replica_pools, params, preemption, prefix_caching,
                                str(records) if records else None, str(timeline) if timeline else None, tick)
        m = result.metrics
        if band:
            from tokenfab.perf.band import metric_band
            rerun = lambda p: runner.run(spec, chip, dep, load(), replica_pools, p, preemption,  # noqa: E731
                                         prefix_caching).metrics
            m["band"] = {k: list(v) for k, v in metric_band(rerun, params, BAND_METRICS).items()}
    except runner.RunError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write output: {e.strerror} ({e.filename})")
    if not m.get("requests") and m.get("rejected"):
        for path in (records, timeline):      # a run that served nobody leaves no files behind
            if path is not None:
                Path(path).unlink(missing_ok=True)
        fail(f"every request was refused ({m['rejected']:,}): no prompt fits the KV cache of "
             f"{m.get('kv_capacity_tokens', 0):,.0f} tokens per replica; raise tp or lower the lengths")
    if traffic.source is not None:
        m["sharegpt"] = traffic.source
    if as_json:
        print_json(m)
        return
    if traffic.source is not None:
        c = m["sharegpt"]
        out.print(f"ShareGPT {c['file']}: {c['kept']:,} of {c['records']:,} conversations kept by vLLM's filters, "
                  f"served in a seeded shuffle, cycled; tokens: {c['tokens_counted_by']}",
                  highlight=False, soft_wrap=True)
    _print_simulation(m, spec.name, chip.id, replica_pools)


@contextmanager
def _progress_bar(total: int | None, quiet: bool) -> Iterator[Callable[[], None] | None]:
    """A transient bar on stderr and its per-request tick; none at all (not even Rich loaded) when `quiet`."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err.rich, transient=True) as bar:
        task = bar.add_task("simulating", total=total)
        count = [0]

        def tick() -> None:
            count[0] += 1
            if count[0] % 2048 == 0:
                bar.update(task, completed=count[0])
        yield tick


# what `simulate --band` reruns report
BAND_METRICS = ("ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99", "e2e_ms_p50", "e2e_ms_p99",
                "output_tokens_per_s")


def _print_simulation(m: dict[str, Any], model: str, chip: str, pools: Any) -> None:
    from rich.table import Table
    layout = (f"{pools.prefill} prefill + {pools.decode} decode replicas" if pools.disaggregated
              else f"{pools.replicas} replica(s)")
    table = Table("metric", "mean", "p50", "p90", "p99",
                  title=f"tokenfab simulate: {model} on {m['devices']} x {chip}, {layout}")
    for name, label in (("ttft", "TTFT ms"), ("tpot", "TPOT ms"), ("e2e", "end-to-end ms"), ("queue", "queueing ms")):
        table.add_row(label, *(f"{m[f'{name}_ms_{s}']:,.1f}" for s in ("mean", "p50", "p90", "p99")))
    out.print(table)
    if "band" in m:
        from tokenfab.perf.band import band_scales
        fast, slow = band_scales()
        bands = Table("metric", "simulated", "band", title=f"with every step x{fast:.2f} to x{slow:.2f} (the step "
                      "model's held-out error, P90 to P10)")
        for name, (low, high) in m["band"].items():
            bands.add_row(name, f"{m[name]:,.1f}", f"{low:,.1f} - {high:,.1f}")
        out.print(bands)
    summary = Table("figure", "value", show_header=False, title="throughput, goodput, memory, energy")
    rows = [("requests (rejected)", f"{m['requests']:,} ({m['rejected']:,})"),
            ("output tokens/s", f"{m['output_tokens_per_s']:,.0f}"),
            ("output tokens/s per chip", f"{m['output_tokens_per_s_per_device']:,.0f}"),
            ("goodput tokens/s (share of requests in SLO)",
             f"{m['goodput_tokens_per_s']:,.0f} ({m['goodput_requests_share']:.1%})"),
            ("mean decode batch", f"{m['mean_decode_batch']:.1f}"),
            ("KV utilisation mean (peak tokens / capacity)",
             f"{m['kv_utilisation_mean']:.1%} ({m['kv_peak_tokens']:,} / {m['kv_capacity_tokens']:,})"),
            ("preemptions", f"{m['preemptions']:,}"),
            ("prefix-cache hit tokens", f"{m['prefix_cache_hit_tokens']:,}"),
            ("energy J (avg power W)", f"{m['energy_j']:,.0f} ({m['avg_power_w']:,.0f})"),
            ("J per output token", f"{m['joules_per_output_token']:.3f}")]
    for row in rows:
        summary.add_row(*row)
    out.print(summary)
    if m["classes"]:
        classes = Table("class", "requests", "TTFT p50 ms", "TPOT p50 ms", "SLO", "in SLO", "attained",
                        "J per output token")
        for name, c in m["classes"].items():
            slo = " ".join(f"{k.split('_')[0].upper()}<={v:g}ms" for k, v in c.items() if k.endswith("_slo_ms"))
            classes.add_row(name, f"{c['requests']:,}", f"{c['ttft_ms']['p50']:,.1f}", f"{c['tpot_ms']['p50']:,.1f}",
                            slo or "-", f"{c['slo_met_share']:.1%}", "yes" if c["slo_attained"] else "no",
                            f"{c['joules_per_output_token']:.3f}")
        out.print(classes)
