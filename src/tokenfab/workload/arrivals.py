"""Arrival processes: open loop (`Poisson`, `Gamma`), closed loop (`Closed`), `Offline` and `Trace` replay.

`rate` counts sessions (turn-0 requests) per second; arrivals start at t = 0."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tokenfab.workload.errors import _check, _finite
from tokenfab.workload.traces import TRACE_FORMATS, read_trace


@dataclass(frozen=True)
class Poisson:
    """Open loop, exponential gaps: `rate` sessions per second."""

    rate: float

    def __post_init__(self) -> None:
        _check(_finite(self.rate) and self.rate > 0, f"rate must be > 0 (sessions per second), got {self.rate!r}")

    def gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, n)


@dataclass(frozen=True)
class Gamma:
    """Open loop, gamma gaps with coefficient of variation `cv`: cv > 1 is burstier than Poisson, cv = 1
    is Poisson, cv = 0 is evenly spaced."""

    rate: float
    cv: float

    def __post_init__(self) -> None:
        _check(_finite(self.rate) and self.rate > 0, f"rate must be > 0 (sessions per second), got {self.rate!r}")
        _check(_finite(self.cv) and self.cv >= 0, f"cv must be >= 0 (1 = Poisson), got {self.cv!r}")

    def gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cv == 0:
            return np.full(n, 1.0 / self.rate)
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, 1.0 / (self.rate * shape), n)


@dataclass(frozen=True)
class Closed:
    """Closed loop: `concurrency` users, each issuing its next session when the previous one finishes."""

    concurrency: int

    def __post_init__(self) -> None:
        _check(isinstance(self.concurrency, (int, np.integer)) and self.concurrency >= 1,
               f"concurrency must be an integer >= 1, got {self.concurrency!r}")


@dataclass(frozen=True)
class Offline:
    """Every session arrives at t = 0 (offline batch)."""


@dataclass(frozen=True)
class Trace:
    """Session arrival times replayed from a trace file (any `read_trace` format), divided by `speedup`.

    When more sessions are asked for than the trace holds, it repeats, shifted by its span plus one mean gap."""

    path: str
    format: str | None = None
    speedup: float = 1.0

    def __post_init__(self) -> None:
        _check(_finite(self.speedup) and self.speedup > 0, f"speedup must be > 0, got {self.speedup!r}")
        _check(self.format is None or self.format in TRACE_FORMATS,
               f"format {self.format!r} unknown: allowed {', '.join(TRACE_FORMATS)}")

    def times(self) -> np.ndarray:
        return _trace_times(str(self.path), self.format) / self.speedup


Arrival = Poisson | Gamma | Closed | Offline | Trace
ARRIVAL_KINDS = ("poisson", "gamma", "closed", "offline", "trace")


def open_loop_times(arrival: Poisson | Gamma, rng: np.random.Generator, n: int, t0: float) -> tuple[np.ndarray, float]:
    """`n` arrival times from `t0` with the process's gaps, and when the next one comes: a stream drawn in blocks
    goes on where the last block ended."""
    gaps = arrival.gaps(rng, n)
    times = t0 + np.concatenate(([0.0], np.cumsum(gaps[:-1])))
    return times, float(times[-1] + gaps[-1])


def closed_loop_times(arrival: Closed, index: np.ndarray) -> np.ndarray:
    """Closed loop: the first `concurrency` requests (by stream index) at t = 0, each later one when another
    finishes (NaN: the simulator sends it)."""
    return np.where(index < arrival.concurrency, 0.0, np.nan)


def poisson(rate: float) -> Poisson:
    return Poisson(rate)


def gamma(rate: float, cv: float) -> Gamma:
    return Gamma(rate, cv)


def closed(concurrency: int) -> Closed:
    return Closed(concurrency)


def offline() -> Offline:
    return Offline()


def trace(path: str | Path, format: str | None = None, speedup: float = 1.0) -> Trace:
    return Trace(str(path), format, speedup)


@cache
def _trace_times(path: str, fmt: str | None) -> np.ndarray:
    return read_trace(path, fmt).arrival
