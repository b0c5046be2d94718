"""Typed access to the catalog's uncertain constants, nominal or as seeded Monte Carlo draws.

Models are written once in NumPy arithmetic and take their constants from a `Draws` object: with
`n=None` every constant is its catalog value (a float), with `n=N` it is an array of N samples from a
triangular distribution over the catalog's low/value/high. Each constant draws from its own stream,
seeded by (seed, name), so a figure's samples do not depend on which other constants a command used.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenfab import catalog


@dataclass(frozen=True)
class Uncertain:
    """A constant's typical value and its low/high bounds, with the source it comes from."""

    name: str
    value: float
    low: float
    high: float
    source: str | None


def _pick(field: Any, key: str | None, name: str) -> Any:
    if isinstance(field, dict):
        if key is None:
            raise KeyError(f"constant {name!r} is keyed: give one of {', '.join(map(str, field))}")
        if key not in field:
            raise KeyError(f"constant {name!r} has no entry {key!r}: allowed {', '.join(map(str, field))}")
        return field[key]
    return field


def keys(name: str) -> tuple[str, ...]:
    """The keys (nodes, memory types...) of a keyed constant."""
    value = catalog.constants()[name]["value"]
    return tuple(value) if isinstance(value, dict) else ()


def get(name: str, *path: str) -> Uncertain:
    """A constant by name, descending into keyed values (`get("mac_energy_pj", "bf16", "n5")`).

    Bounds come from `low`/`high` (scalars or keyed like the value), else from `rel_low`/`rel_high`
    multipliers, else the constant is taken as certain."""
    rec = catalog.constants()[name]
    value, low, high = rec["value"], rec.get("low"), rec.get("high")
    label = name
    for key in path:
        value = _pick(value, key, label)
        low = _pick(low, key, label) if isinstance(low, dict) else low
        high = _pick(high, key, label) if isinstance(high, dict) else high
        label = f"{label}.{key}"
    if isinstance(value, dict):
        raise KeyError(f"constant {label!r} is keyed: give one of {', '.join(map(str, value))}")
    v = float(value)
    if low is None and "rel_low" in rec:
        low, high = v * float(rec["rel_low"]), v * float(rec["rel_high"])
    lo = float(low) if low is not None else v
    hi = float(high) if high is not None else v
    return Uncertain(label, v, min(lo, v), max(hi, v), rec.get("source"))


class Draws:
    """Constants for one evaluation: catalog values (`n=None`) or `n` seeded samples of each."""

    def __init__(self, n: int | None = None, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self._cache: dict[str, float | np.ndarray] = {}
        self.used: dict[str, Uncertain] = {}

    def __call__(self, name: str, *path: str) -> float | np.ndarray:
        u = get(name, *path)
        self.used[u.name] = u
        if u.name in self._cache:
            return self._cache[u.name]
        if self.n is None or u.low == u.high:
            out: float | np.ndarray = u.value if self.n is None else np.full(self.n, u.value)
        else:
            rng = np.random.default_rng([self.seed, zlib.crc32(u.name.encode())])
            out = rng.triangular(u.low, u.value, u.high, self.n)
        self._cache[u.name] = out
        return out

    def triangular(self, label: str, low: float, mode: float, high: float) -> float | np.ndarray:
        """A model-derived uncertain figure (not a catalog constant) drawn the same way."""
        if self.n is None:
            return mode
        if label in self._cache:
            return self._cache[label]
        lo, hi = min(low, mode), max(high, mode)
        if lo == hi:
            out: float | np.ndarray = np.full(self.n, mode)
        else:
            rng = np.random.default_rng([self.seed, zlib.crc32(label.encode())])
            out = rng.triangular(lo, mode, hi, self.n)
        self._cache[label] = out
        return out


def percentiles(x: float | np.ndarray) -> tuple[float, float, float]:
    """P10, P50, P90 of a sampled figure (all three equal for a nominal float). Infinite draws ("never") rank
    above every finite one: a percentile that falls among them is inf, not the nan interpolation would give."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v, v, v
    p10, p50, p90 = np.percentile(arr, [10, 50, 90], method="lower" if np.isinf(arr).any() else "linear")
    return float(p10), float(p50), float(p90)
