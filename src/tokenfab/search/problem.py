"""`DesignProblem`: what `tokenfab design` is asked — traffic, models, demand, constraints, the space.

Read from a YAML file or the embedded default (`catalog/data/design_default.yaml`), then overridden by
command-line flags. Everything is checked here, before any work or any write, so bad input fails with
one line that names the field (and the store is left untouched).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tokenfab import catalog
from tokenfab import workload as W
from tokenfab.model import ModelSpec, load_model
from tokenfab.tech import MEMORY_TYPES, NODES
from tokenfab.units import PRECISION_BYTES, month_index
from tokenfab.yaml_input import load_user_yaml, yaml_problem

DEFAULT_PATH = Path(str(catalog.DATA)) / "design_default.yaml"
CHIP_AXES = ("cores", "clock_ghz", "memory", "sram_shared_mb", "scaleup_links", "scaleup_domain", "scaleout_gbps")
DEP_AXES = ("tp", "pp", "weight_precision", "kv_precision", "max_batch", "chunk_tokens", "disaggregated")
LENGTH_SAMPLE = 20000


class DesignInputError(ValueError):
    """Input `design` cannot run on; the message is the one line the user sees."""


# what a problem file may say (the embedded default's sections, the study's, and free text)
PROBLEM_FIELDS = frozenset({"assign", "constraints", "custom", "demand_output_tokens_per_day", "demand_source",
                            "demand_range_output_tokens_per_day", "deployment", "models", "scenarios", "space",
                            "template", "traffic", "utilisation", "question", "name", "description", "note"})


def _fail(msg: str) -> None:
    raise DesignInputError(msg)


@dataclass(frozen=True)
class ClassStats:
    """What the analytic screen needs of a traffic class: shares, length statistics and its SLO."""

    name: str
    model: str
    share: float            # of requests, over the whole mix
    isl_mean: float
    osl_mean: float
    isl_p99: float
    isl_sq_mean: float       # E[ISL^2]: prompt-length spread drives queueing for the chunk budget
    osl_p10: float
    ttft_s: float
    tpot_s: float
    percentile: float
    osl_sq_mean: float = 0.0     # E[OSL^2]: long outputs stay longer, so a running batch is length-biased


def parse_memory(spec: str) -> tuple[str, int, float]:
    """`HBM3E:8x36` -> (type, stacks, GiB per stack)."""
    try:
        kind, rest = str(spec).split(":")
        stacks, gb = rest.lower().split("x")
        out = (kind, int(stacks), float(gb))
    except ValueError:
        raise DesignInputError(f"space.memory value {spec!r}: expected TYPE:STACKSxGIB, e.g. HBM3E:8x36") from None
    if out[0] not in MEMORY_TYPES or out[0] == "none":
        _fail(f"space.memory type {out[0]!r}: allowed {', '.join(m for m in MEMORY_TYPES if m != 'none')}")
    return out


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomSpec(_Spec):
    """How the custom chip is bought and when it arrives (a problem's `custom:`). The partner's margin and NRE share,
    the software costs and maturity, NRE reuse and the tape-out-to-delivery time are catalog constants
    (silicon.yaml), drawn by the Monte Carlo; here are the choices."""

    partner: Literal["broadcom-style", "in-house"] = "broadcom-style"
    partner_name: str | None = None          # documentation, e.g. "Broadcom"
    generation: int = Field(default=1, ge=1, le=6)
    tapeout: str | None = None               # YYYY-MM; first delivery = tapeout + tapeout_to_delivery_months
    first_delivery: str | None = None        # YYYY-MM; overrides tapeout + the catalog's delay
    catalog_price_date: str = "2026-04"      # when the catalog's prices were read
    source: str | None = None
    note: str | None = None

    @field_validator("tapeout", "first_delivery", "catalog_price_date")
    @classmethod
    def _month(cls, v: str | None) -> str | None:
        if v is not None:
            month_index(v)
        return v


class ScenarioSpec(_Spec):
    """The two stress scenarios the answer reports (None: the catalog constant's value)."""

    supply_shock_price_premium: float | None = Field(default=None, ge=0, le=5)
    tapeout_slip_months: float | None = Field(default=None, ge=0, le=60)


SpecT = TypeVar("SpecT", bound=BaseModel)


def _spec_error(section: str, err: ValidationError) -> DesignInputError:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in (section, *e["loc"]))
    if e["type"] == "extra_forbidden":
        return DesignInputError(f"{loc}: unknown field")
    msg = str(e["msg"]).removeprefix("Value error, ")
    return DesignInputError(f"{loc} = {e.get('input')!r}: {msg}")


@dataclass
class DesignProblem:
    """A design question, validated. `raw` is the canonical dict (it keys the stored run)."""

    raw: dict[str, Any]

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> DesignProblem:
        """The embedded default or a YAML file, with flag overrides (None values are ignored)."""
        src = Path(path) if path else DEFAULT_PATH
        try:
            raw = load_user_yaml(src.read_text())
        except OSError as err:
            raise DesignInputError(f"problem file {str(path)!r}: {err.strerror}") from None
        except yaml.YAMLError as err:
            raise DesignInputError(f"problem file {str(path)!r} is not valid YAML{yaml_problem(err)}") from None
        if not isinstance(raw, dict):
            _fail(f"problem file {str(src)!r}: a mapping of traffic, models, constraints... is required")
        unknown = sorted(set(map(str, raw)) - PROBLEM_FIELDS)
        if unknown:
            _fail(f"problem file {str(src)!r}: unknown field {unknown[0]!r} "
                  f"(allowed: {', '.join(sorted(PROBLEM_FIELDS))})")
        if path:  # a user file inherits whatever it leaves out from the default
            base = yaml.safe_load(DEFAULT_PATH.read_text())
            own_assign = "assign" in raw
            base.update(raw)
            raw = base
            if not own_assign:   # the default's class -> model routing, only where both ends are the file's
                overrides = {**overrides, "models": overrides.get("models") or raw.get("models")}
        raw = copy.deepcopy(raw)
        for key, value in overrides.items():
            if value is None:
                continue
            if key in ("node", "power_w", "max_chiplets", "budget_usd"):
                raw.setdefault("constraints", {})[key] = value
            else:
                raw[key] = value
        if overrides.get("traffic") is not None or overrides.get("models") is not None:
            # the default's class -> model routing only where both ends are still there
            models = raw["models"] if isinstance(raw["models"], list) else [raw["models"]]
            traffic = str(raw.get("traffic"))
            raw["assign"] = {c: m for c, m in (raw.get("assign") or {}).items() if m in models and c in traffic}
        if overrides.get("demand_output_tokens_per_day") is not None:
            raw.pop("demand_source", None)
        prob = cls(raw)
        prob.validate()
        return prob

    def validate(self) -> None:
        r = self.raw
        models = r.get("models")
        if isinstance(models, str):
            models = r["models"] = [models]
        if not models or not isinstance(models, list):
            _fail("models: at least one model id is required")
        if not all(isinstance(m, str) for m in models):
            _fail(f"models = {models!r}: a list of model ids (text)")
        for section in ("constraints", "space", "deployment", "assign"):
            if r.get(section) is not None and not isinstance(r[section], dict):
                _fail(f"{section}: a mapping is required, got {type(r[section]).__name__}")
        assign = r.get("assign") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in assign.items()):
            _fail("assign: class name -> model id, both text")
        for m in models:
            try:
                load_model(m)
            except (KeyError, ValueError) as err:
                _fail(str(err).strip("'\""))
        demand = r.get("demand_output_tokens_per_day")
        if not isinstance(demand, int | float) or not np.isfinite(demand) or demand <= 0:
            _fail(f"demand_output_tokens_per_day = {demand!r}: a positive number of output tokens per day")
        rng = r.get("demand_range_output_tokens_per_day")
        if rng is not None and not (isinstance(rng, list) and len(rng) == 2
                                    and all(isinstance(v, int | float) and np.isfinite(v) for v in rng)
                                    and 0 < rng[0] <= demand <= rng[1]):
            _fail(f"demand_range_output_tokens_per_day = {rng!r}: [low, high] with 0 < low <= "
                  f"demand_output_tokens_per_day <= high")
        self.custom_spec  # noqa: B018  (validates custom:)
        self.scenario_spec  # noqa: B018  (validates scenarios:)
        util = r.get("utilisation", 0.7)
        if not isinstance(util, int | float) or not 0 < util <= 1:
            _fail(f"utilisation = {util!r}: allowed 0 < u <= 1")
        c = r.setdefault("constraints", {})
        if c.get("node") not in NODES:
            _fail(f"constraints.node = {c.get('node')!r}: allowed {', '.join(NODES)}")
        for key in ("power_w", "budget_usd"):
            v = c.get(key)
            if v is not None and (not isinstance(v, int | float) or v <= 0):
                _fail(f"constraints.{key} = {v!r}: a positive number (or null for no limit)")
        mc = c.get("max_chiplets", 1)
        if not isinstance(mc, int) or mc < 1:
            _fail(f"constraints.max_chiplets = {mc!r}: a positive integer")
        space = r.get("space") or {}
        for axis in CHIP_AXES:
            vals = space.get(axis)
            if not isinstance(vals, list) or not vals:
                _fail(f"space.{axis}: a non-empty list of values is required")
        for spec in space["memory"]:
            parse_memory(spec)
        dep = r.get("deployment") or {}
        for axis in DEP_AXES:
            vals = dep.get(axis)
            if not isinstance(vals, list) or not vals:
                _fail(f"deployment.{axis}: a non-empty list of values is required")
        for axis, lowest in (("ep", 1), ("mtp", 0)):   # optional: expert parallelism and MTP draft tokens
            vals = dep.get(axis, [lowest])
            if not isinstance(vals, list) or not vals or any(
                    not isinstance(v, int) or isinstance(v, bool) or v < lowest for v in vals):
                _fail(f"deployment.{axis}: a non-empty list of integers >= {lowest} is required")
        for p in dep["weight_precision"] + dep["kv_precision"]:
            if p not in PRECISION_BYTES:
                _fail(f"deployment precision {p!r}: allowed {', '.join(sorted(PRECISION_BYTES))}")
        self.classes  # noqa: B018  (validates traffic and assignment)

    # -- derived ----------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def model_ids(self) -> list[str]:
        return list(self.raw["models"])

    @cached_property
    def models(self) -> dict[str, ModelSpec]:
        return {m: load_model(m) for m in self.model_ids}

    @property
    def demand(self) -> float:
        """Output tokens per day over the whole mix."""
        return float(self.raw["demand_output_tokens_per_day"])

    @property
    def demand_range(self) -> tuple[float, float]:
        """Low and high output tokens/day around the demand (the demand itself where no range is given)."""
        rng = self.raw.get("demand_range_output_tokens_per_day") or [self.demand, self.demand]
        return float(rng[0]), float(rng[1])

    def _section(self, key: str, spec: type[SpecT]) -> SpecT:
        """A mapping section of the problem validated against its pydantic model; one line on a bad field."""
        raw = self.raw.get(key) or {}
        if not isinstance(raw, dict):
            _fail(f"{key}: a mapping ({', '.join(spec.model_fields)})")
        try:
            return spec.model_validate(raw)
        except ValidationError as err:
            raise _spec_error(key, err) from None

    @cached_property
    def custom_spec(self) -> CustomSpec:
        return self._section("custom", CustomSpec)

    @cached_property
    def scenario_spec(self) -> ScenarioSpec:
        return self._section("scenarios", ScenarioSpec)

    @property
    def terms(self) -> Any:
        """The custom chip's purchase terms (`economics.CustomTerms`) from `custom:`."""
        from tokenfab.economics import CustomTerms
        spec = self.custom_spec
        return CustomTerms(spec.partner, spec.generation)

    @property
    def price_month(self) -> int:
        return month_index(self.custom_spec.catalog_price_date)

    def delivery_month(self, tapeout_to_delivery_months: float | None = None) -> int:
        """First delivery of the custom chip: given, else tape-out plus the catalog's delay, else the price date."""
        spec = self.custom_spec
        if spec.first_delivery:
            return month_index(spec.first_delivery)
        if spec.tapeout:
            if tapeout_to_delivery_months is None:
                from tokenfab.constants import get
                tapeout_to_delivery_months = get("tapeout_to_delivery_months").value
            return month_index(spec.tapeout) + int(round(tapeout_to_delivery_months))
        return self.price_month

    @property
    def utilisation(self) -> float:
        return float(self.raw.get("utilisation", 0.7))

    @property
    def constraints(self) -> dict[str, Any]:
        return self.raw["constraints"]

    @cached_property
    def workload(self) -> W.Workload:
        """The traffic mix as one workload (its classes drawn from presets or given by a workload file)."""
        traffic = self.raw.get("traffic")
        if isinstance(traffic, str):
            traffic = {"mix": {name: 1.0 for name in traffic.replace("+", ",").split(",") if name}} \
                if not traffic.endswith((".yaml", ".yml")) else {"file": traffic}
        if not isinstance(traffic, dict) or not (traffic.get("mix") or traffic.get("file")):
            _fail("traffic: give mix (preset: share, ...) or file (a workload YAML)")
        try:
            if traffic.get("file"):
                return W.load_workload(traffic["file"])
            classes = []
            for name, share in traffic["mix"].items():
                info = W.preset(name)
                for c in info.classes:
                    classes.append(W.RequestClass(c.name, float(share) * c.share, c.input_len, c.output_len, c.slo,
                                                  c.shared_prefix, c.turns, c.think_s))
            return W.Workload(tuple(classes), W.Poisson(1.0))
        except W.WorkloadError as err:
            raise DesignInputError(f"traffic: {err}") from None

    @cached_property
    def classes(self) -> list[ClassStats]:
        """Per-class statistics from a seeded sample of the mix (history and prefixes included)."""
        wl = self.workload
        assign = self.raw.get("assign") or {}
        names = [c.name for c in wl.classes]
        for cls_name, model in assign.items():
            if cls_name not in names:
                _fail(f"assign: class {cls_name!r} is not in the traffic: allowed {', '.join(names)}")
            if model not in self.model_ids:
                _fail(f"assign: model {model!r} for class {cls_name!r} is not one of models: "
                      f"{', '.join(self.model_ids)}")
        table = wl.requests(LENGTH_SAMPLE, 0)
        out = []
        for i, c in enumerate(wl.classes):
            if c.slo is None:
                _fail(f"traffic class {c.name!r} has no SLO: design needs ttft_s and tpot_s for every class")
            mask = table.class_id == i
            if not mask.any():
                continue
            isl, osl = table.input_len[mask].astype(float), table.output_len[mask].astype(float)
            out.append(ClassStats(
                name=c.name, model=assign.get(c.name, self.model_ids[0]), share=c.share,
                isl_mean=float(isl.mean()), osl_mean=float(osl.mean()),
                isl_p99=float(np.percentile(isl, c.slo.percentile)), isl_sq_mean=float((isl**2).mean()),
                osl_p10=float(max(np.percentile(osl, 10), 2)),
                ttft_s=float(c.slo.ttft_s or 1e9), tpot_s=float(c.slo.tpot_s or 1e9),
                percentile=float(c.slo.percentile), osl_sq_mean=float((osl**2).mean())))
        return out

    def model_demand(self) -> dict[str, float]:
        """Output tokens per second each model must serve (the mix's request shares x output lengths)."""
        weights = {m: 0.0 for m in self.model_ids}
        for c in self.classes:
            weights[c.model] += c.share * c.osl_mean
        total = sum(weights.values())
        return {m: self.demand / 86400.0 * w / total for m, w in weights.items() if w > 0}

    def space_values(self, axis: str) -> list[Any]:
        return list(self.raw["space"][axis])

    def dep_values(self, axis: str) -> list[Any]:
        return list(self.raw["deployment"][axis])
