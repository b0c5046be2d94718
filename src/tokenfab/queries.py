"""The `predict` query schema (../shared/data/measured/README.md, minus the measured value)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Scenario = Literal["offline", "static", "server", "concurrency", "capacity", "prefill", "layer", "gemm",
                   "memcopy", "allreduce"]
SCENARIOS: tuple[str, ...] = Scenario.__args__  # type: ignore[attr-defined]

# Metrics every answer of a scenario carries (DESIGN.md contract).
SCENARIO_METRICS: dict[str, tuple[str, ...]] = {
    "offline": ("output_tokens_per_s",),
    "static": ("output_tokens_per_s", "step_ms_mean"),
    "server": ("output_tokens_per_s", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_mean",
               "tpot_ms_p50", "tpot_ms_p99"),
    "concurrency": ("output_tokens_per_s", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_mean",
                    "tpot_ms_p50", "tpot_ms_p99"),
    "capacity": ("requests_per_s", "output_tokens_per_s"),
    "prefill": ("ttft_ms_mean",),
    "gemm": ("gemm_tflops",),
    "memcopy": ("memcopy_tbps",),
    "allreduce": ("allreduce_busbw_gbps", "allreduce_latency_ms"),
    "layer": ("layer_ms",),
}


# a latency limit of a capacity query: ttft_ms_p99, tpot_ms_p90, e2e_ms_p99.9 ...
SLO_KEY = re.compile(r"^(ttft|tpot|e2e)_ms_p(\d+(?:\.\d+)?)$")


def slo_limits(slo: dict[str, float]) -> list[tuple[str, float, float]]:
    """(metric, percentile, limit in ms) of each limit of an `slo` object; raises ValueError naming a bad key."""
    out = []
    for key, limit in slo.items():
        m = SLO_KEY.match(key)
        if not m:
            raise ValueError(f"unknown limit {key!r}: allowed ttft_ms_pNN, tpot_ms_pNN, e2e_ms_pNN")
        pct = float(m.group(2))
        if not 0 < pct < 100:
            raise ValueError(f"limit {key!r}: the percentile must lie in (0, 100)")
        if not isinstance(limit, int | float) or isinstance(limit, bool) or not limit > 0:
            raise ValueError(f"limit {key!r} = {limit!r}: a positive number of milliseconds")
        out.append((m.group(1), pct, float(limit)))
    return out


class Query(BaseModel):
    """One prediction request. Unknown keys (url, note, quality, value...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str = "query"
    scenario: Scenario
    hardware: str
    model: str | None = None
    devices: int = Field(1, ge=1)
    tp: int | None = Field(None, ge=1)
    pp: int | None = Field(None, ge=1)
    ep: int | None = Field(None, ge=1)
    replicas: int | None = Field(None, ge=1)
    precision: str | None = None
    kv_precision: str | None = None
    engine: str = "trtllm"
    input_len: float | None = Field(None, gt=0)
    output_len: float | None = Field(None, gt=0)
    input_len_exact: bool | None = None
    batch: int | None = Field(None, ge=1)
    concurrency: int | None = Field(None, ge=1)
    rate: float | None = Field(None, gt=0)
    max_batch: int | None = Field(None, ge=1)
    shape: dict[str, Any] | None = None
    metric: str | None = None
    note: str | None = None
    dataset: str | None = None
    mtp: int | None = Field(None, ge=0)         # speculative draft tokens per decode step (MTP / EAGLE)
    accept: float | None = Field(None, ge=1.0)  # acceptance length: tokens emitted per decode step
    slo: dict[str, Any] | None = None          # capacity: latency limits, e.g. {"ttft_ms_p99": 2000}
    power_cap_w: float | None = Field(None, gt=0)   # a power limit per accelerator below its TDP (MaxQ)
    power_scope: Literal["accelerator", "server", "facility"] | None = None   # what avg_power_w and J/token cover

    @field_validator("slo")
    @classmethod
    def _slo(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty object: give at least one limit, e.g. {\"ttft_ms_p99\": 2000}")
            slo_limits(v)
        return v

    @model_validator(mode="after")
    def _capacity(self) -> Query:
        if self.scenario == "capacity":
            if self.rate is not None:
                raise ValueError("field 'rate': a capacity query's rate is its answer: leave 'rate' null")
            if not self.slo:
                raise ValueError("field 'slo' is required for scenario 'capacity' (e.g. {\"ttft_ms_p99\": 2000, "
                                 "\"tpot_ms_p99\": 200})")
        return self

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_default(cls, v: Any) -> Any:
        return "trtllm" if v is None else v


def describe_validation_error(err: ValidationError) -> str:
    """One line naming the first bad field and what is allowed."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "query"
    msg = first["msg"].removeprefix("Value error, ")
    if not first["loc"] and msg.startswith("field "):   # a rule across fields names its own field
        return msg
    if first["type"] == "literal_error" and field == "scenario":
        msg = f"allowed {', '.join(SCENARIOS)}"
    return f"field {field!r}: {msg} (got {first.get('input')!r})"


def parse_query(obj: Any) -> Query:
    if not isinstance(obj, dict):
        raise ValueError("query must be a JSON object")
    try:
        return Query.model_validate(obj)
    except ValidationError as err:
        raise ValueError(describe_validation_error(err)) from None


def read_queries(lines: Iterator[str]) -> Iterator[tuple[int, str, Query | str]]:
    """Yield (line number, id, Query or one-line error) for each non-blank line of a JSONL stream."""
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            yield lineno, f"line-{lineno}", f"line {lineno}: malformed JSON ({err.msg} at column {err.colno})"
            continue
        qid = str(obj.get("id", f"line-{lineno}")) if isinstance(obj, dict) else f"line-{lineno}"
        try:
            yield lineno, qid, parse_query(obj)
        except ValueError as err:
            yield lineno, qid, str(err)
