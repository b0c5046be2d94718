"""NVIDIA AIConfigurator 0.12.0 on the end-to-end rows of data/measured/calibration-moe.jsonl.

    python benchmarks/aic_moe_rows.py [OUT_CSV] [--only ID,ID,...]
    # default OUT_CSV: $PEERS/fidelity/preds_aic_moe.csv (PEERS defaults to ~/.cache/tokenfab-peers)
    # the saved copy the comparison reads by default: benchmarks/results/aic_moe_rows.csv

Any Python can start it: without `aiconfigurator` importable it builds $PEERS/aiconfigurator-venv with the
shared peers script (pip, ~850 MB) and re-runs itself with that venv's interpreter. Writes one CSV row per
end-to-end measured row: `id,metric,measured,aic_pred,status,detail`; status is "ok" or "unsupported" (the
detail says why) or "error" (AIConfigurator raised; the detail holds its message).

AIConfigurator defaults throughout (database mode SILICON, the perf-DB version it marks current for the
system/backend, its own KV/memory defaults); nothing is tuned to the measured values. The mapping of a row:
  system   h100-sxm->h100_sxm, h200->h200_sxm, b200->b200_sxm, gb200, b300->b300_sxm, gb300; other chips
           (h20, h800, mi300x, ...) have no AIConfigurator system table -> unsupported.
  model    the bundled config of the same checkpoint (HF id; a local copy of the bundled config.json where
           the HF id is not in its offline list).
  backend  from the engine tag: sglang -> sglang, vllm -> vllm, trtllm / mlperf -> trtllm.
  layout   tp, pp from the row; tp=1 with ep=N -> attention DP N + MoE EP N; tp=T with ep=E -> MoE EP E x
           MoE TP T/E (attention DP T when the note says attention DP); ep unstated -> MoE TP = tp
           (TRT-LLM / SGLang default sharding). Replicas multiply instance throughput.
  quant    the checkpoint's own (auto-inferred) when the row's precision is the model's native one, else
           gemm/moe fp8 | bfloat16 | nvfp4; KV fp8 where the row says so.
  scenario static (batch B)            -> estimate-mode static, batch B per replica (per attention-DP rank)
           static, no output_len        -> static_gen (a decode pool at context ISL), batch per rank
           offline, no output_len       -> static_ctx (a prefill pool), PREFILL_TOKENS_PER_RANK tokens per rank
           offline, C prompts at once   -> static, batch C per replica
           offline (engine-chosen batch)-> agg (in-flight batching) at the power-of-two batch <= max_batch (else
                                           512, AIConfigurator's own agg-sweep default) with the highest
                                           throughput that passes its KV-capacity check
           concurrency C, decode pool   -> static_gen, C / ranks per rank (MTP with the stated acceptance)
           concurrency C                -> agg, batch C per replica (per rank)
           server (Poisson arrivals)    -> unsupported: AIConfigurator has no queueing model
Throughput is AIConfigurator's output tokens/s of the instance x replicas, except in static mode, where it is
B x OSL / request latency (its tokens/s counts pp batches in flight, which one released batch does not have).
MLPerf rows carry no prompt length: the dataset mean from tokenfab's catalog (datasets.yaml) is used, the same
input tokenfab gets.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "measured" / "calibration-moe.jsonl"
DATASETS_YAML = ROOT / "src" / "tokenfab" / "catalog" / "data" / "datasets.yaml"
PEERS = Path(os.environ.get("PEERS", Path.home() / ".cache" / "tokenfab-peers"))
VENV = PEERS / "aiconfigurator-venv"
SETUP = Path(os.environ.get("AIC_SETUP", "/work/shared/peers/aiconfigurator.sh"))
DEFAULT_OUT = PEERS / "fidelity" / "preds_aic_moe.csv"
WORK = PEERS / "fidelity" / "aic-moe-models"
FIELDS = ["id", "metric", "measured", "aic_pred", "status", "detail"]

E2E = ("offline", "static", "server", "concurrency", "prefill")
SYSTEMS = {"h100-sxm": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm", "gb200": "gb200", "b300": "b300_sxm",
           "gb300": "gb300", "a100-sxm": "a100_sxm", "l40s": "l40s"}
MODELS = {"deepseek-v3": "deepseek-ai/DeepSeek-V3", "deepseek-r1": "deepseek-ai/DeepSeek-R1",
          "kimi-k2": "moonshotai/Kimi-K2-Instruct",
          "llama-4-maverick": "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
          "gpt-oss-120b": "openai/gpt-oss-120b", "qwen3-235b-a22b": "Qwen/Qwen3-235B-A22B-FP8",
          "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1", "llama-3.1-405b": "meta-llama/Meta-Llama-3.1-405B"}
DENSE = {"llama-3.1-405b"}
NATIVE = {"deepseek-v3": "fp8", "deepseek-r1": "fp8", "kimi-k2": "fp8", "gpt-oss-120b": "fp4",
          "qwen3-235b-a22b": "fp8"}
QUANT = {"fp8": "fp8", "bf16": "bfloat16", "fp16": "bfloat16", "fp4": "nvfp4"}
MLPERF_DATASETS = {"mixtral-8x7b": "mlperf-mixtral-8x7b", "llama-3.1-405b": "mlperf-llama3.1-405b",
                   "deepseek-r1": "mlperf-deepseek-r1"}
# SGLang's chunked-prefill budget in the large-EP prefill runs (the blog's "16,384 tokens per device per batch").
PREFILL_TOKENS_PER_RANK = 16384
AGG_DEFAULT_CAP = 512
LADDER = [4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1]


def ensure_aic() -> None:
    """Re-run under the AIConfigurator venv (built on first use) unless `aiconfigurator` imports here."""
    try:
        import aiconfigurator  # noqa: F401
        return
    except ImportError:
        pass
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run(["bash", str(SETUP), "--venv-only"], check=True, env={**os.environ, "PEERS": str(PEERS)})
    os.execv(str(py), [str(py), *sys.argv])


class Unsupported(Exception):
    """The row cannot be expressed in AIConfigurator; the message is the reason."""


def dataset_input_mean(name: str) -> float:
    import yaml
    return float(yaml.safe_load(DATASETS_YAML.read_text())["datasets"][name]["input_mean"])


def model_path(model: str) -> str:
    """The HF id where AIConfigurator resolves it offline, else a local copy of its bundled config."""
    import aiconfigurator_core
    hf = MODELS[model]
    bundled = Path(aiconfigurator_core.__file__).parent / "model_configs" / (hf.replace("/", "--") + "_config.json")
    if model not in LOCAL_ONLY:
        return hf
    local = WORK / hf.replace("/", "--")
    if not (local / "config.json").exists():
        local.mkdir(parents=True, exist_ok=True)
        (local / "config.json").write_text(bundled.read_text())
    return str(local)


LOCAL_ONLY = {"kimi-k2", "mixtral-8x7b"}   # bundled config present, HF id not in the offline default list


def backend_of(engine: str) -> str:
    e = (engine or "").lower()
    if "sglang" in e:
        return "sglang"
    if "vllm" in e:
        return "vllm"
    if "trtllm" in e or "mlperf" in e:
        return "trtllm"
    raise Unsupported(f"engine '{engine}' has no AIConfigurator backend")


def layout(r: dict) -> dict:
    """AIConfigurator parallel arguments for one replica, and the number of attention-DP ranks."""
    tp, pp, ep = r["tp"], r["pp"] or 1, r["ep"]
    note = (r.get("note") or "").lower()
    if tp is None and ep is None:
        if "rank assumed = 1 gpu under dp attention" in note and r["devices"]:
            tp, ep = 1, r["devices"]   # decode pool with DP attention over every GPU (the row's own reading)
        else:
            raise Unsupported("parallel layout not stated (tp, ep null)")
    tp = tp or 1
    if ep is None and tp == 1 and (r["devices"] or 1) > 1 and r["model"] not in DENSE:
        raise Unsupported("parallel layout not stated (ep null on a multi-GPU tp=1 instance)")
    kw = {"tp_size": tp, "pp_size": pp, "attention_dp_size": 1}
    if r["model"] in DENSE:
        return kw
    if ep is None:
        kw.update(moe_tp_size=tp, moe_ep_size=1)
    elif tp == 1 and ep > 1:
        kw.update(attention_dp_size=ep, moe_tp_size=1, moe_ep_size=ep)
    elif "attention dp" in note or "enable_attention_dp" in note:
        kw.update(tp_size=1, attention_dp_size=tp, moe_tp_size=max(tp // ep, 1), moe_ep_size=ep)
    else:
        kw.update(moe_tp_size=max(tp // ep, 1), moe_ep_size=ep)
    return kw


def quant(r: dict) -> dict:
    prec, model = r["precision"], r["model"]
    if prec is None:
        raise Unsupported("weight precision not stated")
    kw = {}
    if NATIVE.get(model) != prec:
        if prec not in QUANT:
            raise Unsupported(f"precision {prec}")
        kw["gemm_quant_mode"] = QUANT[prec]
        if model not in DENSE:
            kw["moe_quant_mode"] = QUANT[prec]
    if r.get("kv_precision") == "fp8":
        kw["kvcache_quant_mode"] = "fp8"
    return kw


def mtp(r: dict) -> dict:
    """MTP draft length and accepted draft tokens stated in the note (SGLang window = draft tokens incl. the
    verified one; acceptance length includes the bonus token)."""
    m = re.search(r"MTP on: (\d)-token window.*?acceptance length ([\d.]+)", r.get("note") or "")
    if not m:
        return {}
    window, accept_len = int(m.group(1)), float(m.group(2))
    return {"nextn": window - 1, "nextn_accepted": round(accept_len - 1.0, 3)}


def run(r: dict, mode: str, batch: int, isl: int, osl: int, extra: dict | None = None):
    from aiconfigurator.cli.api import cli_estimate
    kw = dict(mode=mode, backend_name=backend_of(r["engine"]), isl=isl, osl=osl, batch_size=batch,
              **layout(r), **quant(r), **(extra or {}))
    try:
        res = cli_estimate(model_path(r["model"]), SYSTEMS[r["hardware"]], **kw)
    except RuntimeError as err:
        if str(err).startswith("OOM"):   # weights alone over the GPU memory: no estimate at all
            raise Unsupported(f"does not fit in GPU memory per AIConfigurator ({str(err)[5:120]})") from err
        raise
    row = res.summary.get_summary_df().iloc[0].to_dict()
    oom = bool(res.kv_cache_warning) or bool(res.summary.check_kv_cache_oom()) or bool(res.summary.check_oom())
    return row, oom


def describe(row: dict, oom: bool, mode: str) -> str:
    return (f"mode={mode};{row['parallel']};bs/rank={row['bs']};ttft={float(row['ttft']):.1f};"
            f"tpot={float(row['tpot']):.2f};gemm={row['gemm']};moe={row['moe']};kv={row['kvcache']};"
            f"backend={row['backend']}-{row['version']};mem_gb={float(row['memory']):.0f};oom_flag={oom}")


def metric_of(r: dict, row: dict, replicas: int, isl: float, osl: float, mode: str = "") -> float:
    m = r["metric"]
    gpus = float(row["num_total_gpus"])
    tps = float(row["tokens/s"])
    if mode == "static":   # one batch of B requests, done after request_latency (AIConfigurator's tokens/s
        # assumes pp batches in flight, which a single released batch does not have; same value at pp=1)
        tps = float(row["global_bs"]) * osl / (float(row["request_latency"]) / 1e3)
    if m == "output_tokens_per_s":
        return tps * replicas
    if m == "output_tokens_per_s_per_device":
        return tps / gpus
    if m == "total_tokens_per_s_per_device":
        return float(row["seq/s"]) * (isl + osl) / gpus
    if m in ("tpot_ms_mean", "itl_ms_mean", "tpot_ms_p50"):
        return float(row["tpot"])
    if m == "step_ms_mean":
        return float(row["request_latency"]) / osl
    if m in ("ttft_ms_mean", "ttft_ms_p50"):
        return float(row["ttft"])
    raise Unsupported(f"metric {m}")


def per_rank(total: float, replicas: int, kw: dict) -> int:
    b = total / replicas / kw["attention_dp_size"]
    if b < 1:
        raise Unsupported(f"batch {total} is below one sequence per attention-DP rank")
    return max(1, round(b))


def predict(r: dict, cache: dict) -> tuple[float, str]:
    sc, hw, model = r["scenario"], r["hardware"], r["model"]
    if sc == "server":
        raise Unsupported("server scenario (Poisson arrivals): AIConfigurator has no queueing model")
    if hw not in SYSTEMS:
        raise Unsupported(f"no AIConfigurator system table for {hw}")
    if model not in MODELS:
        raise Unsupported(f"model {model} not bundled with AIConfigurator")
    if "context parallel" in (r["engine"] or "").lower():
        raise Unsupported("decode context parallel: not modelled by AIConfigurator")
    backend_of(r["engine"])
    kw = layout(r)
    quant(r)
    replicas = r["replicas"] or 1
    isl, osl = r["input_len"], r["output_len"]
    if isl is None:
        name = MLPERF_DATASETS.get(model) if (r["engine"] or "").startswith("mlperf") else None
        if name is None:
            raise Unsupported("input_len unknown")
        isl = dataset_input_mean(name)
    isl_i = int(round(isl))
    note = (r.get("note") or "").lower()
    decode_pool = "decode-only" in note or "decode nodes only" in (r["engine"] or "").lower()

    if sc == "offline" and osl is None:   # a prefill pool measured alone
        b = max(1, PREFILL_TOKENS_PER_RANK // isl_i)
        row, oom = run(r, "static_ctx", b, isl_i, 1)
        v = float(row["seq/s"]) * isl_i / float(row["num_total_gpus"])
        return v, describe(row, oom, "static_ctx") + f";prefill_tokens/rank={b * isl_i}"
    if sc == "static" and osl is None:    # a decode pool at context ISL
        if not r["batch"]:
            raise Unsupported("decode-only row without batch")
        b = per_rank(r["batch"], replicas, kw)
        row, oom = run(r, "static_gen", b, isl_i, 2)
        return metric_of(r, row, replicas, isl, 0), describe(row, oom, "static_gen")
    if osl is None:
        raise Unsupported("output_len unknown")
    osl_i = int(round(osl))
    if sc == "static":
        if not r["batch"]:
            raise Unsupported("static row without batch")
        b = per_rank(r["batch"], replicas, kw)
        row, oom = run(r, "static", b, isl_i, osl_i)
        return metric_of(r, row, replicas, isl, osl, "static"), describe(row, oom, "static")
    if sc == "concurrency":
        if not r["concurrency"]:
            raise Unsupported("concurrency row without concurrency")
        b = per_rank(r["concurrency"], replicas, kw)
        if decode_pool:
            extra = mtp(r)
            row, oom = run(r, "static_gen", b, isl_i, osl_i, extra)
            d = describe(row, oom, "static_gen") + (f";nextn={extra['nextn']};accepted={extra['nextn_accepted']}"
                                                    if extra else "")
            return metric_of(r, row, replicas, isl, osl), d
        row, oom = run(r, "agg", b, isl_i, osl_i)
        d = describe(row, oom, "agg")
        if "mtp on" in note:
            d += ";MTP in the run, acceptance not stated: modelled without MTP"
        return metric_of(r, row, replicas, isl, osl), d
    if sc == "offline":
        if r["concurrency"]:   # C prompts released at once, all in flight: one static batch
            b = per_rank(r["concurrency"], replicas, kw)
            row, oom = run(r, "static", b, isl_i, osl_i)
            return metric_of(r, row, replicas, isl, osl, "static"), describe(row, oom, "static")
        cap = r["max_batch"] or AGG_DEFAULT_CAP
        key = (model, hw, r["precision"], r.get("kv_precision"), r["tp"], r["pp"], r["ep"], r["engine"], isl_i, osl_i,
               cap)
        if key not in cache:
            best = None
            for b in (x for x in LADDER if x <= cap):
                try:
                    row, oom = run(r, "agg", b, isl_i, osl_i)
                except Unsupported as why:   # over the GPU memory at this batch: try a smaller one
                    if "does not fit" in str(why):
                        continue
                    raise
                if oom:
                    continue
                if best is None or float(row["tokens/s"]) > float(best[0]["tokens/s"]):
                    best = (row, oom)
                elif best is not None:
                    break   # throughput falls as the batch shrinks
            cache[key] = best
        if cache[key] is None:
            raise Unsupported("no batch fits AIConfigurator's KV-capacity check")
        row, oom = cache[key]
        return metric_of(r, row, replicas, isl, osl), describe(row, oom, "agg") + f";ladder_cap={cap}"
    raise Unsupported(f"scenario {sc}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--only")]
    only = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")), None)
    out = Path(args[0]) if args else DEFAULT_OUT
    ensure_aic()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from aiconfigurator_core.sdk.errors import PerfDataNotAvailableError
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("scenario") in E2E and (not only or r["id"] in only.split(","))]
    out.parent.mkdir(parents=True, exist_ok=True)
    t0, cache, written = time.time(), {}, []
    for r in rows:
        try:
            pred, detail = predict(r, cache)
            status = "ok" if math.isfinite(pred) and pred > 0 else "error"
        except Unsupported as why:
            pred, status, detail = None, "unsupported", str(why)
        except PerfDataNotAvailableError as err:   # no kernel/comm table for this combination
            pred, status, detail = None, "unsupported", f"no AIConfigurator perf data: {err}".replace("\n", " ")[:300]
        except Exception as err:   # AIConfigurator raised: keep its message
            pred, status, detail = None, "error", f"{type(err).__name__}: {err}".replace("\n", " ")[:300]
        written.append({"id": r["id"], "metric": r["metric"], "measured": r["value"],
                        "aic_pred": "" if pred is None else f"{pred:.6g}", "status": status, "detail": detail})
        print(f"[{time.time() - t0:5.0f}s] {r['id']:30s} {status:11s} {r['value']:>10} -> "
              f"{'' if pred is None else f'{pred:.4g}':>10}  {detail[:110]}", flush=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(written)
    n_ok = sum(x["status"] == "ok" for x in written)
    print(f"aiconfigurator: {n_ok} of {len(written)} end-to-end rows answered, {time.time() - t0:.0f}s -> {out}")


if __name__ == "__main__":
    main()
