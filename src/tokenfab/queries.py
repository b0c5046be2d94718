"""The `predict` query schema (../shared/data/measured/README.md, minus the measured value)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Scenario = Literal["offline", "static", "server", "concurrency", "prefill", "layer", "gemm", "memcopy",
                   "allreduce"]
SCENARIOS: tuple[str, ...] = Scenario.__args__  # type: ignore[attr-defined]

# Metrics every answer of a scenario carries (DESIGN.md contract).
SCENARIO_METRICS: dict[str, tuple[str, ...]] = {
    "offline": ("output_tokens_per_s",),
    "static": ("output_tokens_per_s", "step_ms_mean"),
    "server": ("output_tokens_per_s", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_mean",
               "tpot_ms_p50", "tpot_ms_p99"),
    "concurrency": ("output_tokens_per_s", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_mean",
                    "tpot_ms_p50", "tpot_ms_p99"),
    "prefill": ("ttft_ms_mean",),
    "gemm": ("gemm_tflops",),
    "memcopy": ("memcopy_tbps",),
    "allreduce": ("allreduce_busbw_gbps", "allreduce_latency_ms"),
    "layer": ("layer_ms",),
}


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

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_default(cls, v: Any) -> Any:
        return "trtllm" if v is None else v


def describe_validation_error(err: ValidationError) -> str:
    """One line naming the first bad field and what is allowed."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "query"
    msg = first["msg"]
    if first["type"] == "literal_error":
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
