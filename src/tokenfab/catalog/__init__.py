"""Shipped data: accelerators, silicon/economic constants, model configs, dataset and engine presets.

Every figure in these files carries its source (URL or paper) and, where uncertain, a low/high range.
Loaders here only read and index the files; interpretation lives in `hardware.py`, `model.py`, ...
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"   # what importlib.resources gives for an installed package, without loading it


class UnknownIdError(KeyError):
    """An id that is not in a catalog; the message lists what is allowed."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain line
        return str(self.args[0])


# libyaml's parser when the wheel has it: the catalog is read at every start and the pure-Python parser
# takes most of a command's start-up
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _read_yaml(name: str) -> Any:
    """A shipped data file, parsed once per process (hardware.yaml feeds two catalogs). Treat as read-only."""
    with (DATA / name).open() as fh:
        return yaml.load(fh, Loader=_LOADER)  # noqa: S506 (a safe loader)


@cache
def accelerators() -> dict[str, dict[str, Any]]:
    """All accelerator records by id: the researched catalog plus the extra datasheet entries."""
    records: dict[str, dict[str, Any]] = {}
    for name in ("hardware.yaml", "accelerators_extra.yaml"):
        if not (DATA / name).is_file():
            continue
        for rec in _read_yaml(name).get("accelerators", []):
            records[rec["id"]] = rec
    return records


@cache
def constants() -> dict[str, dict[str, Any]]:
    """Silicon, energy and economic constants, each with value, unit, source and confidence.

    hardware.yaml's researched constants plus silicon.yaml's (node tables, building blocks, TCO inputs),
    which never repeats a name of the first file."""
    merged = dict(_read_yaml("hardware.yaml")["constants"])
    if (DATA / "silicon.yaml").is_file():
        extra = _read_yaml("silicon.yaml")["constants"]
        clash = set(extra) & set(merged)
        if clash:
            raise ValueError(f"constants defined twice: {sorted(clash)}")
        merged.update(extra)
    return merged


def accelerator(hw_id: str) -> dict[str, Any]:
    recs = accelerators()
    if hw_id not in recs:
        raise UnknownIdError(f"hardware {hw_id!r} unknown: allowed {', '.join(sorted(recs))}")
    return recs[hw_id]


@cache
def model_ids() -> tuple[str, ...]:
    return tuple(sorted(p.name[: -len(".json")] for p in (DATA / "models").iterdir() if p.name.endswith(".json")))


def model_config(model: str) -> dict[str, Any]:
    """A model's HF config.json: a zoo id, a path to a config.json or to a model folder holding one, or a
    Hugging Face id (`org/name`) already in the local hub cache (nothing is downloaded)."""
    if model in model_ids():
        return json.loads((DATA / "models" / f"{model}.json").read_text())
    path = _config_path(model)
    if path is None:
        raise UnknownIdError(f"model {model!r} unknown: allowed {', '.join(model_ids())}, a path to a config.json or "
                             "a model folder, or a Hugging Face id in the local cache (org/name)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model config {str(path)!r} is not valid JSON: {err.msg} at line {err.lineno}") from None


def _config_path(model: str) -> Path | None:
    """Where `model`'s config.json is on disk, if anywhere."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path / "config.json" if (path / "config.json").is_file() else None
    if path.is_file():
        return path
    if model.endswith(".json"):
        raise UnknownIdError(f"model config file {model!r} not found")
    if model.count("/") == 1 and not model.startswith(("/", ".")):
        return _hub_cached(model)
    return None


def _hub_cached(repo_id: str) -> Path | None:
    """config.json of a Hugging Face repo in the local hub cache (`HF_HUB_CACHE`, else `HF_HOME`/hub, else
    ~/.cache/huggingface/hub): the snapshot its `main` ref names, else the newest snapshot that has one."""
    import os
    hub = Path(os.environ.get("HF_HUB_CACHE")
               or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        pinned = repo / "snapshots" / ref.read_text().strip() / "config.json"
        if pinned.is_file():
            return pinned
    found = sorted((repo / "snapshots").glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


@cache
def datasets() -> dict[str, dict[str, Any]]:
    """Named dataset presets (mean input/output lengths with their sources)."""
    if not (DATA / "datasets.yaml").is_file():
        return {}
    return _read_yaml("datasets.yaml")["datasets"]


@cache
def spec_decode() -> list[dict[str, str]]:
    """Published speculative-decoding acceptance lengths (one row per measurement, each with its source URL)."""
    import csv

    with open(DATA / "spec_decode.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@cache
def engines() -> dict[str, dict[str, Any]]:
    """Serving-engine presets (memory fraction, batch and token limits) with their sources."""
    return _read_yaml("engines.yaml")["engines"]


@cache
def workloads() -> dict[str, dict[str, Any]]:
    """Traffic presets (classes, length distributions, SLOs, arrivals), every figure with its source."""
    return _read_yaml("workloads.yaml")["workloads"]


def calibration_path() -> Any:
    return DATA / "calibration.json"


@cache
def step_error() -> dict[str, Any]:
    """The step model's held-out step-time error (written by `benchmarks/step_error_band.py`); none if absent."""
    path = DATA / "step_error.json"
    if not path.is_file():
        return {"p10": 0.0, "p90": 0.0, "rows": 0}
    return json.loads(path.read_text())


@cache
def fingerprint() -> str:
    """A hash of every shipped data file (catalog, constants, fitted figures, calibration): a stored answer is
    reused only while these are what it was computed from."""
    h = hashlib.sha256()
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(DATA)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@cache
def power_fit() -> dict[str, float]:
    """The power model's fitted figure (written by `tokenfab.energy_fit.write_fit`); neutral if absent."""
    path = DATA / "power_fit.json"
    if not path.is_file():
        return {"busy_floor_share": 0.0}
    return {"busy_floor_share": float(json.loads(path.read_text())["busy_floor_share"]["value"])}


@cache
def error_bands() -> dict[str, Any]:
    """Held-out error quantiles by answer group and metric family (written by `benchmarks/error_bands.py`);
    no bands if absent."""
    path = DATA / "error_bands.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["bands"]


@cache
def silicon_fit() -> dict[str, Any]:
    """The silicon model's fitted scales (written by `tokenfab silicon --refit`); neutral ones if absent."""
    path = DATA / "silicon_fit.json"
    if not path.is_file():
        return {"operand_port_cells": {"value": 40.0}, "control_block_mm2": {"value": 150.0},
                "operand_energy_factor": {"value": 1.0}, "static_w_per_mm2": {"value": 0.1},
                "area_error": {"p10": 0.0, "p90": 0.0}, "tdp_error": {"p10": 0.0, "p90": 0.0}}
    return json.loads(path.read_text())


def design_dir() -> Any:
    """Shipped chip designs: the examples and the published chips the silicon model is checked on."""
    return DATA / "designs"
