"""The workload file format (YAML): pydantic models that validate it before `files` builds a mix.

Kept apart so that sampling a preset or fixed-length traffic does not pay for building the validators.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Meta(BaseModel):
    """Fields every section may carry to document itself; ignored by the sampler."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = None
    sources: list[str] | dict[str, str] | None = None
    note: str | None = None
    description: str | None = None
    assumption: bool | None = None
    low: float | None = None
    high: float | None = None


class _DistModel(_Meta):
    kind: Literal["fixed", "normal", "lognormal", "empirical"]
    value: float | None = None
    mean: float | None = None
    std: float | None = None
    sigma: float | None = None
    values: list[float] | None = None
    weights: list[float] | None = None
    min: float | None = None
    max: float | None = None


class _SLOModel(_Meta):
    ttft_s: float | None = None
    tpot_s: float | None = None
    percentile: float | None = None


class _ClassModel(_Meta):
    name: str
    share: float = 1.0
    input_len: _DistModel | int
    output_len: _DistModel | int
    slo: _SLOModel | None = None
    shared_prefix: int = 0
    turns: _DistModel | int | None = None
    think_s: _DistModel | float | None = None


class _ArrivalModel(_Meta):
    kind: Literal["poisson", "gamma", "closed", "offline", "trace"]
    rate: float | None = None
    cv: float | None = None
    concurrency: int | None = None
    path: str | None = None
    format: str | None = None
    speedup: float = 1.0


class _WorkloadModel(_Meta):
    preset: str | None = None
    arrival: _ArrivalModel | None = None
    classes: list[_ClassModel] | None = None


_MODEL_AT = {"input_len": _DistModel, "output_len": _DistModel, "turns": _DistModel, "think_s": _DistModel,
             "slo": _SLOModel, "arrival": _ArrivalModel}
