"""Workload YAML files and the catalog's presets: parsed, validated with pydantic (`schema`), built into a
`Workload`; every problem a `WorkloadError` naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tokenfab import catalog
from tokenfab.workload.arrivals import ARRIVAL_KINDS, Arrival, Closed, Gamma, Offline, Poisson, Trace
from tokenfab.workload.classes import SLO, LengthDist, RequestClass
from tokenfab.workload.errors import WorkloadError, _check
from tokenfab.workload.stream import Workload
from tokenfab.yaml_input import load_user_yaml, yaml_problem


def _allowed_fields(loc: tuple[Any, ...]) -> str:
    from tokenfab.workload.schema import _MODEL_AT, _ClassModel, _WorkloadModel
    parent = loc[:-1]
    names = [p for p in parent if isinstance(p, str) and p not in ("_DistModel", "_SLOModel")]
    model: Any = _WorkloadModel
    if parent and isinstance(parent[-1], int):
        model = _ClassModel
    elif names:
        model = _MODEL_AT.get(names[-1], _WorkloadModel)
    return ", ".join(model.model_fields)


def _loc(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("_DistModel", "_SLOModel", "_ArrivalModel", "_ClassModel") or str(part).startswith(
                ("int", "float", "function-")):
            continue
        else:
            text += ("." if text else "") + str(part)
    return text


def _pydantic_error(err: Any, where: str) -> WorkloadError:
    errors = err.errors()
    # a mapping given where `Dist | number` is allowed fails the number branch too: report the mapping's
    # own problem, then prefer the outermost one (it reads best)
    relevant = [e for e in errors if not (isinstance(e.get("input"), dict) and e["type"].startswith(("int", "float")))]
    e = min(relevant or errors, key=lambda e: len(e["loc"]))
    loc = tuple(e["loc"])
    if e["type"] == "extra_forbidden":
        return WorkloadError(f"{where}{_loc(loc)}: unknown field: allowed {_allowed_fields(loc)}")
    got = f" (got {e['input']!r})" if e["type"] != "missing" else ""
    return WorkloadError(f"{where}{_loc(loc)}: {e['msg']}{got}")


def _dist(spec: Any, integer: bool = True) -> LengthDist | None:
    from tokenfab.workload.schema import _DistModel
    if spec is None:
        return None
    if not isinstance(spec, _DistModel):
        return LengthDist.fixed(spec)
    mean = spec.mean if spec.mean is not None else spec.value
    if spec.kind == "fixed":
        _check(mean is not None, "value is required for a fixed distribution")
        return LengthDist("fixed", value=float(mean))
    if spec.kind in ("normal", "lognormal"):
        _check(mean is not None, f"mean is required for a {spec.kind} distribution")
    if spec.kind == "normal":
        _check(spec.std is not None, "std is required for a normal distribution")
        return LengthDist.normal(mean, spec.std, spec.min, spec.max)
    if spec.kind == "lognormal":
        return LengthDist.lognormal(mean, spec.std, spec.sigma, spec.min, spec.max)
    _check(spec.values is not None, "values is required for an empirical distribution")
    return LengthDist.empirical(spec.values, spec.weights, spec.min, spec.max)


def _in(where: str, build: Any, *args: Any) -> Any:
    """Run a builder, prefixing any WorkloadError with the location being built."""
    try:
        return build(*args)
    except WorkloadError as err:
        if not where:
            raise
        raise WorkloadError(f"{where}{err}" if where.endswith(": ") else f"{where}.{err}") from None


def _arrival(m: Any, base: Path | None) -> Arrival:
    need = {"poisson": ("rate",), "gamma": ("rate", "cv"), "closed": ("concurrency",), "trace": ("path",),
            "offline": ()}[m.kind]
    for name in need:
        _check(getattr(m, name) is not None, f"{name} is required for a {m.kind} arrival")
    if m.kind == "poisson":
        return Poisson(m.rate)
    if m.kind == "gamma":
        return Gamma(m.rate, m.cv)
    if m.kind == "closed":
        return Closed(m.concurrency)
    if m.kind == "offline":
        return Offline()
    path = Path(m.path)
    if base is not None and not path.is_absolute():
        path = base / path
    _check(path.is_file(), f"path: trace file {str(path)!r} not found")
    return Trace(str(path), m.format, m.speedup)


def _request_class(m: Any) -> RequestClass:
    slo = None
    if m.slo is not None:
        slo = _in("slo", lambda s: SLO(s.ttft_s, s.tpot_s, s.percentile), m.slo)
    return RequestClass(
        name=m.name, share=m.share,
        input_len=_in("input_len", _dist, m.input_len), output_len=_in("output_len", _dist, m.output_len),
        slo=slo, shared_prefix=m.shared_prefix, turns=_in("turns", _dist, m.turns),
        think_s=_in("think_s", _dist, m.think_s),
    )


def _workload_from_model(m: Any, where: str, base: Path | None) -> Workload:
    if m.preset is not None:
        wl = preset(m.preset)
        classes = wl.classes
        arrival = wl.arrival
    else:
        _check(m.classes is not None, f"{where}classes: required (or name a preset: {', '.join(preset_names())})")
        classes, arrival = (), None
    if m.classes is not None:
        _check(len(m.classes) > 0, f"{where}classes: must list at least one class")
        classes = tuple(_in(f"{where}classes[{i}]", _request_class, c) for i, c in enumerate(m.classes))
    if m.arrival is not None:
        arrival = _in(f"{where}arrival", _arrival, m.arrival, base)
    _check(arrival is not None,
           f"{where}arrival: required: kind is one of {', '.join(ARRIVAL_KINDS)}")
    return _in(where, lambda: Workload(tuple(classes), arrival, m.description or ""))


def workload_from_dict(data: Any, where: str = "", base: Path | None = None) -> Workload:
    """A workload from the parsed YAML structure (see `load_workload` for the format)."""
    from pydantic import ValidationError

    from tokenfab.workload.schema import _WorkloadModel
    _check(isinstance(data, dict), f"{where}a workload must be a mapping with classes and arrival (or preset)")
    try:
        m = _WorkloadModel.model_validate(data)
    except ValidationError as err:
        raise _pydantic_error(err, where) from None
    return _workload_from_model(m, where, base)


def load_workload(path: str | Path) -> Workload:
    """Read a workload YAML file.

    Format::

        preset: chat                # optional: start from a preset (then classes/arrival override it)
        arrival: {kind: poisson, rate: 4.0}   # poisson(rate) | gamma(rate, cv) | closed(concurrency)
                                              # | offline | trace(path[, format, speedup])
        classes:
          - name: chat
            share: 0.7              # relative weights, normalised to sum to 1
            input_len: {kind: lognormal, mean: 1155, sigma: 0.985, min: 2, max: 14050}
            output_len: 256         # a bare number is a fixed length
            slo: {ttft_s: 0.45, tpot_s: 0.04, percentile: 99}
            shared_prefix: 0        # system-prompt tokens shared by the class
            turns: {kind: lognormal, mean: 4, sigma: 0.8, max: 30}   # multi-turn sessions
            think_s: {kind: lognormal, mean: 20, sigma: 1.0}        # seconds between turns

    Distribution kinds: fixed(value) | normal(mean, std) | lognormal(mean, std or sigma) |
    empirical(values[, weights]), each with optional min/max. Any section may also carry `source`,
    `note`, `low`, `high` to document itself.
    """
    p = Path(path)
    _check(p.is_file(), f"workload file {str(p)!r} not found")
    try:
        data = load_user_yaml(p.read_text())
    except yaml.YAMLError as err:
        raise WorkloadError(f"{p}: not valid YAML{yaml_problem(err)}") from None
    return workload_from_dict(data, f"{p}: ", p.parent)


@cache
def _presets() -> dict[str, Any]:
    return catalog.workloads()


def preset_names() -> tuple[str, ...]:
    return tuple(_presets())


def preset_info(name: str) -> dict[str, Any]:
    """The preset's raw catalog record (descriptions, sources, notes, low/high ranges)."""
    _check(name in _presets(), f"preset {name!r} unknown: allowed {', '.join(preset_names())}")
    return _presets()[name]


def preset(name: str, rate: float | None = None, concurrency: int | None = None) -> Workload:
    """A named traffic mix from the catalog; `rate` replaces its session rate (a gamma keeps its cv),
    `concurrency` makes it closed loop."""
    _check(rate is None or concurrency is None, "give rate or concurrency, not both")
    wl = workload_from_dict(preset_info(name), f"preset {name}: ")
    if rate is not None:
        arrival = wl.arrival
        wl = wl.with_arrival(Gamma(rate, arrival.cv) if isinstance(arrival, Gamma) else Poisson(rate))
    elif concurrency is not None:
        wl = wl.with_arrival(Closed(concurrency))
    return wl
