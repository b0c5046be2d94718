"""`tokenfab predict`: one query from flags, or a JSONL stream of them, answered as JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.common import load_cal
from tokenfab.cli.io import JsonOpt, fail
from tokenfab.cli.options import CalibrationOpt, one_of


def predict(
    queries: Annotated[Path | None, typer.Option(help="JSONL queries, one per line; '-' = stdin")] = None,
    scenario: Annotated[str | None, typer.Option(help="what to predict (serving, or one kernel or collective)",
                                                 callback=one_of("tokenfab.queries:SCENARIOS"))] = None,
    hardware: Annotated[str | None, typer.Option(help="catalog hardware id, or a chip design YAML")] = None,
    model: Annotated[str | None, typer.Option(help="zoo model id or path to config.json")] = None,
    devices: Annotated[int, typer.Option(help="chips in all, every replica together")] = 1,
    tp: Annotated[int | None, typer.Option(help="tensor-parallel size of one replica (attention and dense layers)")]
    = None,
    pp: Annotated[int | None, typer.Option(help="pipeline-parallel size of one replica")] = None,
    ep: Annotated[int | None, typer.Option(help="expert-parallel size; ep > tp runs data-parallel attention")] = None,
    precision: Annotated[str | None, typer.Option(help="weight and activation precision (default: the checkpoint's)",
                                                  callback=one_of("tokenfab.units:PRECISION_BYTES"))] = None,
    kv_precision: Annotated[str | None, typer.Option(help="KV-cache precision (default: the engine's choice)",
                                                     callback=one_of("tokenfab.units:PRECISION_BYTES"))] = None,
    engine: Annotated[str, typer.Option(
        help="engine tag, parsed: trtllm-0.20, sglang-0.5.2, vllm-0.9.1, tgi, ... (a '-pd-1xTP4+2xTP4' tail is a "
             "P/D layout)")] = "trtllm",
    input_len: Annotated[float | None, typer.Option(help="prompt tokens per request")] = None,
    output_len: Annotated[float | None, typer.Option(help="generated tokens per request")] = None,
    batch: Annotated[int | None, typer.Option(help="static/prefill/layer: sequences in the batch")] = None,
    rate: Annotated[float | None, typer.Option(help="server: Poisson arrivals, requests/s (whole system)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="concurrency: requests kept in flight")] = None,
    max_batch: Annotated[int | None, typer.Option(
        help="sequences in flight per replica (default: the engine preset's, or a tuned server's for capacity)")]
    = None,
    metric: Annotated[str | None, typer.Option(help="the one metric to print (default: every predicted metric)")]
    = None,
    mtp: Annotated[int | None, typer.Option(help="speculative draft tokens per decode step (MTP models)")] = None,
    accept: Annotated[float | None, typer.Option(help="tokens emitted per decode step (default: published "
                                                 "acceptance for the model and depth)")] = None,
    power_cap_w: Annotated[float | None, typer.Option(help="power limit per accelerator, W (MaxQ)")] = None,
    power_scope: Annotated[str | None, typer.Option(help="what avg_power_w and joules_per_output_token cover",
                                                    callback=one_of("tokenfab.perf.energy:POWER_SCOPES"))] = None,
    budget_s: Annotated[float, typer.Option(help="seconds a query may take before it is answered with an "
                                            "error (the batch goes on)")] = 300.0,
    slo: Annotated[str | None, typer.Option(help="capacity: latency limits in ms, e.g. "
                                            "ttft_ms_p99=2000,tpot_ms_p99=200 (also e2e_ms_pNN)")] = None,
    calibration: CalibrationOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict metrics for one query (flags) or many (--queries). Always prints JSON, with or without --json:
    one object per query, one line each (a single query: exactly one object)."""
    from tokenfab.predict import predict_one
    from tokenfab.queries import parse_query
    del as_json   # the answer is JSON either way; the flag is taken as every answering command takes it
    cal = load_cal(calibration)
    if queries is not None:
        if not budget_s > 0:
            fail(f"--budget-s {budget_s:g}: a positive number of seconds")
        if str(queries) == "-":
            _predict_stream(sys.stdin.buffer, cal, budget_s)
            return
        try:
            stream = open(queries, "rb")  # noqa: SIM115 - closed below; each line is decoded on its own
        except OSError as e:
            fail(f"--queries {str(queries)!r}: {e.strerror}")
        with stream:
            _predict_stream(stream, cal, budget_s)
        return
    given = {k: v for k, v in dict(scenario=scenario, hardware=hardware, model=model, devices=devices, tp=tp,
                                   pp=pp, ep=ep, precision=precision, kv_precision=kv_precision, engine=engine,
                                   input_len=input_len, output_len=output_len, batch=batch, max_batch=max_batch,
                                   metric=metric, rate=rate, concurrency=concurrency, mtp=mtp,
                                   accept=accept, power_cap_w=power_cap_w,
                                   power_scope=power_scope).items() if v is not None}
    if "scenario" not in given or "hardware" not in given:
        fail("give --queries FILE, or at least --scenario and --hardware")
    if slo is not None:
        given["slo"] = _parse_slo(slo)
    try:
        q = parse_query(given)
    except ValueError as e:
        fail(str(e))
    result = predict_one(q, cal, budget_s)
    if "error" in result:
        fail(result["error"])
    print(_json_line(result))


def _parse_slo(text: str) -> dict[str, float]:
    """--slo 'ttft_ms_p99=2000,tpot_ms_p99=200' as the query's `slo` object (the query checks the keys)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq:
            fail(f"--slo {part!r}: write LIMIT=MILLISECONDS, e.g. ttft_ms_p99=2000")
    return out


def _predict_stream(stream: Any, cal: Any, budget_s: float) -> None:
    """One JSON object per query line: the prediction, or the reason it cannot be given."""
    from tokenfab.predict import predict_many
    from tokenfab.queries import read_queries
    rows = list(read_queries(stream))
    answers = iter(predict_many([q for _ln, _id, q in rows if not isinstance(q, str)], cal, budget_s=budget_s))
    for _lineno, qid, q in rows:
        result = {"id": qid, "error": q} if isinstance(q, str) else next(answers)
        print(_json_line(result))


def _json_line(result: dict[str, Any]) -> str:
    """Strict JSON (no NaN or Infinity, which JSON readers refuse): a non-finite answer becomes its error."""
    try:
        return json.dumps(result, sort_keys=True, allow_nan=False)
    except ValueError:
        return json.dumps({"id": result.get("id"), "error": "an answer was not a finite number"}, sort_keys=True)
