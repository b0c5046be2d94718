"""Check the energy model against published measurements (`data/measured/energy.csv`).

Nothing is fitted on these rows. Each offline row of the file becomes a `predict` query (the layout
the submitter used, the dataset preset of its benchmark) and is compared on the row's own power
scope: MLPerf Power rows are the whole server at the wall (`joules_per_output_token_wall`), the
ML.ENERGY rows accelerators only (`joules_per_output_token`). Server-scenario rows wait for the
serving simulator; rows without a reproducible configuration (production fleets, modelled costs)
are not energy measurements of a configuration and are skipped. Average power is compared as well:
J per token is power over throughput, so its error mixes the energy model's with the throughput
model's (old vLLM 0.5.4, MLPerf MaxQ power-capped runs), while the power error is the energy model's.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenfab.perf.energy import host_power_w
from tokenfab.predict import predict_one
from tokenfab.queries import Query
from tokenfab.silicon import resolve_chip

# (source_id, hardware, model prefix in the csv, scenario word) -> the query that reproduces it
_LAYOUTS: dict[tuple[str, str, str], dict] = {
    ("MLPERF_V4.0", "h100-sxm", "Llama-2-70B"): dict(model="llama-2-70b", devices=8, tp=2, precision="fp8",
                                                      engine="mlperf-v4.0-trtllm"),
    ("MLPERF_V4.1", "h200", "Llama-2-70B"): dict(model="llama-2-70b", devices=8, tp=1, precision="fp8",
                                                  engine="mlperf-v4.1-trtllm"),
    ("MLPERF_V4.1", "h200", "Mixtral-8x7B"): dict(model="mixtral-8x7b", devices=8, tp=1, precision="fp8",
                                                   engine="mlperf-v4.1-trtllm"),
    ("MLPERF_V4.1", "h200", "GPT-J-6B"): dict(model="gpt-j-6b", devices=8, tp=1, precision="fp8",
                                               engine="mlperf-v4.1-trtllm"),
    ("MLENERGY_V2", "a100-sxm", "meta-llama/Meta-Llama-3.1-8B"): dict(model="llama-3.1-8b", precision="bf16",
                                                                       engine="vllm-0.5.4", dataset="sharegpt"),
    ("MLENERGY_V2", "a100-sxm", "meta-llama/Meta-Llama-3.1-70B"): dict(model="llama-3.1-70b", precision="bf16",
                                                                        engine="vllm-0.5.4", dataset="sharegpt"),
    ("MLENERGY_V3", "b200", "Qwen/Qwen3-32B"): dict(model="qwen3-32b", precision="bf16", engine="vllm-0.11.1"),
    ("MLENERGY_V3", "h100-sxm", "meta-llama/Llama-3.1-8B"): dict(model="llama-3.1-8b", precision="bf16",
                                                                  engine="vllm-0.11.1"),
}


@dataclass(frozen=True)
class EnergyRow:
    source: str
    hardware: str
    model: str
    scope: str          # "wall" or "accelerator"
    metric: str
    measured: float
    predicted: float | None
    reason: str = ""
    power_measured: float | None = None   # W over the row's scope (all its devices)
    power_predicted: float | None = None

    @property
    def error(self) -> float | None:
        return None if self.predicted is None else self.predicted / self.measured - 1.0

    @property
    def power_error(self) -> float | None:
        """Error of average power: the energy model alone, free of the throughput model's error."""
        if self.power_predicted is None or not self.power_measured:
            return None
        return self.power_predicted / self.power_measured - 1.0


_POWER = re.compile(r"(?:avg system power|implied avg power) ([\d.]+) W")


def _query(row: dict[str, str]) -> tuple[Query, str] | str:
    key = next((k for k in _LAYOUTS if row["source_id"].startswith(k[0]) and row["hardware"] == k[1]
                and row["model"].startswith(k[2])), None)
    if key is None:
        return "no reproducible configuration (fleet statistics or a modelled cost)"
    if "Server" in row["scenario"]:
        return "server scenario: needs the serving simulator"
    spec = dict(_LAYOUTS[key])
    wall = row["power_scope"].lower().startswith("whole system")
    if key[0].startswith("MLENERGY"):  # batch held at its maximum, one model replica over tp GPUs
        tp = int(row["tp"])
        spec.update(devices=tp, tp=tp, max_batch=int(row["batch_or_concurrency"]),
                    output_len=float(row["output_len"].split()[0]))
        if "dataset" not in spec:   # lengths the row states (the v3 blog gives mean outputs, not inputs)
            spec.update(input_len=float(row["input_len"].split()[0]), input_len_exact=True)
    metric = "joules_per_output_token_wall" if wall else "joules_per_output_token"
    return Query(id=row["source_id"], scenario="offline", hardware=row["hardware"], metric="output_tokens_per_s",
                 **spec), metric


def check(path: Path) -> list[EnergyRow]:
    """Predicted vs measured J per output token for every energy row of `path`."""
    rows = []
    with open(path) as fh:
        for row in csv.DictReader(fh):
            if row["metric"] != "joules_per_output_token":
                continue
            scope = "wall" if row["power_scope"].lower().startswith("whole system") else "accelerator"
            made = _query(row)
            base = (row["source_id"], row["hardware"], row["model"].split("(")[0].strip(), scope)
            if isinstance(made, str):
                rows.append(EnergyRow(*base, "joules_per_output_token", float(row["value"]), None, made))
                continue
            q, metric = made
            out = predict_one(q)
            if "error" in out:
                rows.append(EnergyRow(*base, metric, float(row["value"]), None, out["error"]))
                continue
            pred = out["predicted"]
            host = host_power_w(resolve_chip(q.hardware)) * q.devices if scope == "wall" else 0.0
            power = pred["avg_power_w"] + host
            found = _POWER.search(row["notes"])
            rows.append(EnergyRow(*base, metric, float(row["value"]), float(pred[metric]), "",
                                  float(found.group(1)) if found else None, power))
    return rows


# LLM-Inference-Bench runs static batches of one model on one GPU: its engines as tokenfab engines
_BENCH_ENGINES = {"vLLM": "vllm-0.5.4", "TensorRT-LLM": "trtllm"}


def bench_queries(path: Path) -> list[tuple[dict[str, str], Query]]:
    """The static-batch rows of `energy-llm-inference-bench.csv` as `predict` queries (Llama-3-8B is
    Llama-3.1-8B's architecture; bf16, the runs' default)."""
    out = []
    with open(path) as fh:
        for row in csv.DictReader(fh):
            q = Query(id=f"{row['source_id']}-{row['hardware']}-{row['engine']}-{row['batch_or_concurrency']}",
                      scenario="static", hardware=row["hardware"], model="llama-3.1-8b", precision="bf16",
                      engine=_BENCH_ENGINES[row["engine"]], input_len=float(row["input_len"]),
                      output_len=float(row["output_len"]), batch=int(row["batch_or_concurrency"]),
                      devices=int(row["devices"]), metric="avg_power_w")
            out.append((row, q))
    return out


def check_bench(path: Path) -> list[EnergyRow]:
    """Predicted vs measured GPU power and J per output token of the LLM-Inference-Bench rows."""
    rows = []
    for row, q in bench_queries(path):
        base = (row["source_id"], row["hardware"], row["engine"], "accelerator", "joules_per_output_token")
        out = predict_one(q)
        if "error" in out:
            rows.append(EnergyRow(*base, float(row["j_per_output_token"]), None, out["error"]))
            continue
        pred = out["predicted"]
        rows.append(EnergyRow(*base, float(row["j_per_output_token"]), float(pred["joules_per_output_token"]), "",
                              float(row["avg_power_w"]), float(pred["avg_power_w"])))
    return rows


def median_abs_error(rows: list[EnergyRow], power: bool = False) -> float:
    """Median |error| of J per output token (or of average power) over the rows answered."""
    errs = [abs(e) for e in ((r.power_error if power else r.error) for r in rows) if e is not None]
    return float(np.median(errs)) if errs else float("nan")


__all__ = ["EnergyRow", "bench_queries", "check", "check_bench", "median_abs_error"]
