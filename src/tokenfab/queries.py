"""The `predict` query schema (../shared/data/measured/README.md, minus the measured value)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
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


# sane upper bounds: far beyond any real deployment, low enough that arithmetic on them stays finite
MAX_ID = 500
MAX_TEXT = 300
MAX_DEVICES = 1_000_000
MAX_TOKENS = 10_000_000
MAX_RATE = 1e7
MAX_SHAPE = 1e15
# shape keys the planners read as numbers (phase and kernel are names)
SHAPE_NUMBERS = frozenset({"m", "n", "k", "bytes", "element_bytes", "kv_len", "seq_len", "batch", "tokens"})
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

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    id: str = Field("query", max_length=MAX_ID)
    scenario: Scenario
    hardware: str = Field(max_length=MAX_TEXT)
    model: str | None = Field(None, max_length=MAX_TEXT)
    devices: int = Field(1, ge=1, le=MAX_DEVICES)
    tp: int | None = Field(None, ge=1, le=MAX_DEVICES)
    pp: int | None = Field(None, ge=1, le=MAX_DEVICES)
    ep: int | None = Field(None, ge=1, le=MAX_DEVICES)
    replicas: int | None = Field(None, ge=1, le=MAX_DEVICES)
    precision: str | None = None
    kv_precision: str | None = None
    engine: str = Field("trtllm", max_length=MAX_TEXT)
    input_len: float | None = Field(None, gt=0, le=MAX_TOKENS)
    output_len: float | None = Field(None, gt=0, le=MAX_TOKENS)
    input_len_exact: bool | None = None
    batch: int | None = Field(None, ge=1, le=MAX_TOKENS)
    concurrency: int | None = Field(None, ge=1, le=MAX_TOKENS)
    rate: float | None = Field(None, gt=0, le=MAX_RATE)
    max_batch: int | None = Field(None, ge=1, le=MAX_TOKENS)
    shape: dict[str, Any] | None = None
    metric: str | None = Field(None, max_length=MAX_TEXT)
    note: str | None = None
    dataset: str | None = Field(None, max_length=MAX_TEXT)
    mtp: int | None = Field(None, ge=0, le=16)  # speculative draft tokens per decode step (MTP / EAGLE)
    accept: float | None = Field(None, ge=1.0, le=17.0)  # acceptance length: tokens emitted per decode step
    slo: dict[str, Any] | None = None          # capacity: latency limits, e.g. {"ttft_ms_p99": 2000}
    power_cap_w: float | None = Field(None, gt=0, le=1e6)   # a power limit per accelerator below its TDP (MaxQ)
    power_scope: Literal["accelerator", "server", "facility"] | None = None   # what avg_power_w and J/token cover

    @field_validator("devices", "tp", "pp", "ep", "replicas", "input_len", "output_len", "batch", "concurrency",
                     "rate", "max_batch", "mtp", "accept", "power_cap_w", mode="before")
    @classmethod
    def _not_a_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):   # JSON true is not the number 1
            raise ValueError("a number, not true/false")
        return v

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, value in (v or {}).items():
            numeric = key in SHAPE_NUMBERS or isinstance(value, int | float)
            if numeric and (isinstance(value, bool) or not isinstance(value, int | float)
                            or not (math.isfinite(value) and abs(value) <= MAX_SHAPE)):
                raise ValueError(f"shape.{key} = {value!r}: a finite number up to {MAX_SHAPE:g}")
        return v

    @field_validator("slo")
    @classmethod
    def _slo(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty object: give at least one limit, e.g. {\"ttft_ms_p99\": 2000}")
            slo_limits(v)
        return v

    @model_validator(mode="after")
    def _layout(self) -> Query:
        width = max(self.tp or 1, self.ep or 1) * (self.pp or 1)
        if self.replicas is not None and self.replicas * width > self.devices:
            raise ValueError(f"field 'replicas' = {self.replicas}: {self.replicas} replicas x {width} devices each "
                             f"exceed devices = {self.devices}")
        if width > self.devices:
            raise ValueError(f"field 'devices' = {self.devices}: fewer than one replica's max(tp, ep) x pp = {width}")
        return self

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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_queries(lines: Iterable[str | bytes]) -> Iterator[tuple[int, str, Query | str]]:
    """Yield (line number, id, Query or one-line error) for each non-blank line of a JSONL stream. Every line
    stands alone: bytes that are not UTF-8, NaN/Infinity, nesting too deep or numbers too long for Python are
    that line's error, not the stream's."""
    for lineno, line in enumerate(lines, 1):
        fallback = f"line-{lineno}"
        try:
            text = (line.decode("utf-8") if isinstance(line, bytes) else line).strip()
        except UnicodeDecodeError as err:
            yield lineno, fallback, f"line {lineno}: not UTF-8 text (byte {err.start + 1})"
            continue
        if not text:
            continue
        try:
            obj = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            yield lineno, fallback, f"line {lineno}: malformed JSON ({err.msg} at column {err.colno})"
            continue
        except (ValueError, RecursionError) as err:
            reason = "nested too deep" if isinstance(err, RecursionError) else str(err).split(";")[0]
            yield lineno, fallback, f"line {lineno}: unreadable JSON ({reason})"
            continue
        qid = str(obj.get("id", fallback))[:MAX_ID] if isinstance(obj, dict) else fallback
        try:
            yield lineno, qid, parse_query(obj)
        except ValueError as err:
            yield lineno, qid, str(err)
