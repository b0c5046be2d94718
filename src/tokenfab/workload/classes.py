"""Request classes: length distributions (`LengthDist`, token counts or think-time seconds), latency
objectives (`SLO`) and `RequestClass` (a share of sessions with its lengths, SLO, shared prompt and turns)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokenfab.workload.errors import _check, _finite

# --------------------------------------------------------------------------------------------------
# Length distributions
# --------------------------------------------------------------------------------------------------

DIST_KINDS = ("fixed", "normal", "lognormal", "empirical")


def _phi(x: float) -> float:
    """Standard normal CDF (math.erf: no SciPy needed for a clipped mean)."""
    if x == math.inf:
        return 1.0
    if x == -math.inf:
        return 0.0
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _pdf(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class LengthDist:
    """A distribution of token counts (or, for think times, seconds).

    Build one with `LengthDist.fixed / normal / lognormal / empirical`. Samples are clipped to
    [min, max] when given; token counts are rounded and never below 1. `mean` is the mean of what
    `sample` returns (clipping included), so it can be compared with a sample mean directly.
    """

    kind: str
    value: float = 0.0            # fixed: the value; normal/lognormal: the mean before clipping
    std: float = 0.0              # normal: standard deviation
    sigma: float = 0.0            # lognormal: standard deviation of log(x)
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        _check(self.kind in DIST_KINDS, f"kind {self.kind!r} unknown: allowed {', '.join(DIST_KINDS)}")
        _check(_finite(self.value), f"mean must be a finite number, got {self.value!r}")
        if self.kind == "fixed":
            _check(self.value >= 0, f"value must be >= 0, got {self.value}")
        elif self.kind == "normal":
            _check(_finite(self.std) and self.std >= 0, f"std must be >= 0, got {self.std!r}")
        elif self.kind == "lognormal":
            _check(self.value > 0, f"mean must be > 0 for a lognormal, got {self.value}")
            _check(_finite(self.sigma) and self.sigma >= 0, f"sigma must be >= 0, got {self.sigma!r}")
        else:
            _check(len(self.values) > 0, "values must list at least one value")
            _check(all(_finite(v) and v >= 0 for v in self.values), "values must be finite numbers >= 0")
            if self.weights:
                _check(len(self.weights) == len(self.values),
                       f"weights must have one entry per value ({len(self.values)}), got {len(self.weights)}")
                _check(all(_finite(w) and w >= 0 for w in self.weights) and sum(self.weights) > 0,
                       "weights must be >= 0 with a positive sum")
        for name in ("min", "max"):
            v = getattr(self, name)
            _check(v is None or (_finite(v) and v >= 0), f"{name} must be a number >= 0, got {v!r}")
        if self.min is not None and self.max is not None:
            _check(self.min <= self.max, f"min ({self.min}) must be <= max ({self.max})")

    # constructors ----------------------------------------------------------------------------------
    @staticmethod
    def fixed(value: float) -> LengthDist:
        return LengthDist("fixed", value=float(value))

    @staticmethod
    def normal(mean: float, std: float, min: float | None = None, max: float | None = None) -> LengthDist:
        return LengthDist("normal", value=float(mean), std=float(std), min=min, max=max)

    @staticmethod
    def lognormal(mean: float, std: float | None = None, sigma: float | None = None,
                  min: float | None = None, max: float | None = None) -> LengthDist:
        """Lognormal with the given arithmetic mean and either its std or the std of log(x) (sigma)."""
        _check((std is None) != (sigma is None), "lognormal needs exactly one of std or sigma")
        if std is not None:
            _check(_finite(std) and std >= 0, f"std must be >= 0, got {std!r}")
            _check(_finite(mean) and mean > 0, f"mean must be > 0 for a lognormal, got {mean!r}")
            sigma = math.sqrt(math.log1p((std / mean) ** 2))
        return LengthDist("lognormal", value=float(mean), sigma=float(sigma), min=min, max=max)

    @staticmethod
    def empirical(values: Sequence[float], weights: Sequence[float] | None = None,
                  min: float | None = None, max: float | None = None) -> LengthDist:
        return LengthDist("empirical", values=tuple(float(v) for v in values),
                          weights=tuple(float(w) for w in weights) if weights is not None else (), min=min, max=max)

    # sampling --------------------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, self.value)
        if self.kind == "normal":
            return rng.normal(self.value, self.std, n)
        if self.kind == "lognormal":
            return rng.lognormal(math.log(self.value) - 0.5 * self.sigma**2, self.sigma, n)
        vals = np.asarray(self.values)
        if len(vals) == 1:
            return np.full(n, vals[0])
        w = np.asarray(self.weights) if self.weights else np.ones(len(vals))
        cdf = np.cumsum(w) / w.sum()
        return vals[np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(vals) - 1)]

    def _bounds(self, floor: float, integer: bool = False) -> tuple[float, float]:
        """Clip range; for token counts the whole numbers inside [min, max] (and >= 1)."""
        lo = floor if self.min is None else max(math.ceil(self.min) if integer else self.min, floor)
        hi = math.inf if self.max is None else max(math.floor(self.max) if integer else self.max, lo)
        return lo, hi

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` token counts: rounded, clipped to [min, max] and to >= 1, as int64."""
        lo, hi = self._bounds(1.0, integer=True)
        return np.clip(np.rint(self._draw(rng, n)), lo, hi).astype(np.int64)

    def sample_seconds(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` durations in seconds (think times): not rounded, clipped to [min, max] and to >= 0."""
        lo, hi = self._bounds(0.0)
        return np.clip(self._draw(rng, n), lo, hi)

    def _clipped_mean(self, lo: float, hi: float, integer: bool) -> float:
        if self.kind in ("fixed", "empirical"):
            vals = np.asarray(self.values if self.kind == "empirical" else (self.value,))
            w = np.asarray(self.weights) if self.weights else np.ones(len(vals))
            vals = np.clip(np.rint(vals) if integer else vals, lo, hi)
            return float((vals * w).sum() / w.sum())
        if self.kind == "normal":
            mu, s = self.value, self.std
            if s == 0:
                return float(min(max(mu, lo), hi))
            a, b = (lo - mu) / s, (hi - mu) / s
            inner = mu * (_phi(b) - _phi(a)) + s * (_pdf(a) - _pdf(b))
            return lo * _phi(a) + (0.0 if math.isinf(hi) else hi * (1 - _phi(b))) + inner
        s = self.sigma
        mu = math.log(self.value) - 0.5 * s * s
        if s == 0:
            return float(min(max(self.value, lo), hi))
        la = (math.log(lo) - mu) / s if lo > 0 else -math.inf
        lb = (math.log(hi) - mu) / s if not math.isinf(hi) else math.inf
        inner = self.value * (_phi(lb - s) - _phi(la - s))
        return lo * _phi(la) + (0.0 if math.isinf(hi) else hi * (1 - _phi(lb))) + inner

    @property
    def mean(self) -> float:
        """Mean token count that `sample` produces (clipping to [min, max] and >= 1 included)."""
        return self._clipped_mean(*self._bounds(1.0, integer=True), integer=True)

    @property
    def mean_seconds(self) -> float:
        """Mean of `sample_seconds`."""
        return self._clipped_mean(*self._bounds(0.0), integer=False)


# --------------------------------------------------------------------------------------------------
# SLOs and classes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SLO:
    """Latency objective of a class: the `percentile`-th percentile of TTFT must be <= ttft_s and, checked
    separately, that of TPOT <= tpot_s (MLPerf's convention); either bound may be absent.

    The percentile is mandatory because a latency bound without one cannot be checked."""

    ttft_s: float | None
    tpot_s: float | None
    percentile: float

    def __post_init__(self) -> None:
        _check(self.percentile is not None, "percentile is required (e.g. 90 or 99): an SLO needs one")
        _check(_finite(self.percentile) and 0 < self.percentile <= 100,
               f"percentile must be in (0, 100], got {self.percentile!r}")
        _check(self.ttft_s is not None or self.tpot_s is not None, "an SLO needs ttft_s and/or tpot_s")
        for name in ("ttft_s", "tpot_s"):
            v = getattr(self, name)
            _check(v is None or (_finite(v) and v > 0), f"{name} must be > 0 seconds, got {v!r}")


@dataclass(frozen=True)
class RequestClass:
    """One kind of traffic: its share of sessions, per-turn lengths, SLO, shared prompt and turns."""

    name: str
    share: float
    input_len: LengthDist
    output_len: LengthDist
    slo: SLO | None = None
    shared_prefix: int = 0
    turns: LengthDist | None = None
    think_s: LengthDist | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and self.name != "", "name must be a non-empty string")
        _check(_finite(self.share) and self.share >= 0, f"share must be >= 0, got {self.share!r}")
        _check(isinstance(self.shared_prefix, (int, np.integer)) and self.shared_prefix >= 0,
               f"shared_prefix must be an integer >= 0 tokens, got {self.shared_prefix!r}")
        _check(self.think_s is None or self.turns is not None, "think_s needs turns (think time is between turns)")

    @property
    def multi_turn(self) -> bool:
        return self.turns is not None
