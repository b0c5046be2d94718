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
from typing import Any

import numpy as np
import yaml

from tokenfab import catalog
from tokenfab import workload as W
from tokenfab.model import ModelSpec, load_model
from tokenfab.tech import MEMORY_TYPES, NODES
from tokenfab.units import PRECISION_BYTES

DEFAULT_PATH = Path(str(catalog.DATA)) / "design_default.yaml"
CHIP_AXES = ("cores", "clock_ghz", "memory", "sram_shared_mb", "scaleup_links", "scaleup_domain", "scaleout_gbps")
DEP_AXES = ("tp", "pp", "weight_precision", "kv_precision", "max_batch", "chunk_tokens", "disaggregated")
LENGTH_SAMPLE = 20000


class DesignInputError(ValueError):
    """Input `design` cannot run on; the message is the one line the user sees."""


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
            raw = yaml.safe_load(src.read_text())
        except OSError as err:
            raise DesignInputError(f"problem file {str(path)!r}: {err.strerror}") from None
        except yaml.YAMLError:
            raise DesignInputError(f"problem file {str(path)!r} is not valid YAML") from None
        if not isinstance(raw, dict):
            _fail(f"problem file {str(src)!r}: a mapping of traffic, models, constraints... is required")
        if path:  # a user file inherits whatever it leaves out from the default
            base = yaml.safe_load(DEFAULT_PATH.read_text())
            base.update(raw)
            raw = base
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
        for m in models:
            try:
                load_model(m)
            except (KeyError, ValueError) as err:
                _fail(str(err).strip("'\""))
        demand = r.get("demand_output_tokens_per_day")
        if not isinstance(demand, int | float) or not np.isfinite(demand) or demand <= 0:
            _fail(f"demand_output_tokens_per_day = {demand!r}: a positive number of output tokens per day")
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
