"""Traffic: request classes, length distributions, arrival processes, SLOs, presets and trace readers.

The serving simulator consumes one thing from here: a columnar `RequestTable` (one row per request),
either generated from a `Workload` (a mix of `RequestClass`es plus an arrival process) or read from a
production trace (Azure LLM inference, BurstGPT, Mooncake). Everything is sampled with NumPy in
fixed-size blocks from one `Generator(PCG64(seed))`, so a seed gives the same rows bit for bit, a
million-request run streams in bounded memory, and `requests(n)` is a prefix of `requests(m)` for m > n
(except that the very last row never publishes a cache group, see `RequestTable.cache_group`).

Conventions (the simulator relies on them):
- `RequestClass.input_len` is the NEW prompt tokens of one turn (user message, retrieved documents,
  tool result); a row's `input_len` adds the class's shared prefix and, for follow-up turns, the
  session history (all previous turns' input + output).
- `rate` of an open-loop process counts sessions (turn-0 requests) per second; follow-up turns are
  issued by the simulator `think_s` after the previous turn finishes. For single-turn classes
  sessions and requests are the same thing.
- Arrivals start at t = 0 (the first session arrives at 0, then the process's gaps follow).
- Prefix caching: a request reads the first `prefix_len` tokens of token stream `prefix_group` (a hit
  for whatever part of it is cached) and leaves them cached; when it finishes, its whole context
  (input + output) becomes stream `cache_group`, which later requests (the session's next turn, or a
  Mooncake request sharing its blocks) read. Group ids: 0..C-1 are the classes' system prompts,
  C + session id are session histories; in traces, a row's own id.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tokenfab import catalog
from tokenfab.yaml_input import load_user_yaml, yaml_problem


class WorkloadError(ValueError):
    """Bad traffic input (file, preset, parameter or trace row); the message is one line naming the
    field and what is allowed."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise WorkloadError(message)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


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


# --------------------------------------------------------------------------------------------------
# Arrival processes
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Request table
# --------------------------------------------------------------------------------------------------

_FLOAT_COLS = ("arrival", "think_s")


@dataclass(frozen=True)
class RequestTable:
    """Columnar requests, one row each (int64 / float64 NumPy arrays of equal length).

    arrival: seconds; NaN where the simulator issues the request (follow-up turns, closed-loop
      sessions beyond the first `concurrency`).
    input_len: prompt tokens including the shared prefix and the session history.
    output_len: tokens to generate (>= 1).
    class_id: index into `Workload.classes` (0 for traces).
    session, turn: session id and 0-based turn; a session's rows are consecutive in turn order.
    think_s: wait after the previous turn finishes before this one arrives (0 for turn 0).
    prefix_group, prefix_len: the prompt starts with the first `prefix_len` tokens of this reusable
      token stream (-1, 0 = none).
    cache_group: stream this request's whole context (input + output) becomes once it finishes, for a
      later request to reuse (-1 = none).
    """

    arrival: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    class_id: np.ndarray
    session: np.ndarray
    turn: np.ndarray
    think_s: np.ndarray
    prefix_group: np.ndarray
    prefix_len: np.ndarray
    cache_group: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    def __getitem__(self, index: slice | np.ndarray) -> RequestTable:
        return RequestTable(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def single_turn(arrival: np.ndarray, input_len: np.ndarray, output_len: np.ndarray) -> RequestTable:
        """Independent requests of one class, no prefixes (each row its own session)."""
        n = len(arrival)
        zeros = np.zeros(n, dtype=np.int64)
        return RequestTable(np.asarray(arrival, dtype=np.float64), np.asarray(input_len, dtype=np.int64),
                            np.asarray(output_len, dtype=np.int64), zeros, np.arange(n, dtype=np.int64), zeros,
                            np.zeros(n), zeros - 1, zeros, zeros - 1)

    @staticmethod
    def empty() -> RequestTable:
        return RequestTable(**{f.name: np.empty(0, np.float64 if f.name in _FLOAT_COLS else np.int64)
                               for f in fields(RequestTable)})

    @staticmethod
    def concat(parts: Iterable[RequestTable]) -> RequestTable:
        parts = list(parts)
        if not parts:
            return RequestTable.empty()
        return RequestTable(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                               for f in fields(RequestTable)})

    def equals(self, other: RequestTable) -> bool:
        """Bit-for-bit equality (NaN equal to NaN)."""
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name),
                                  equal_nan=f.name in _FLOAT_COLS) for f in fields(self))


# --------------------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------------------

SESSIONS_PER_BLOCK = 16384   # sampling granularity; fixed so that chunking never changes the rows


@dataclass(frozen=True)
class Workload:
    """A traffic mix and how it arrives. Shares are relative weights: they are normalised to sum to 1
    (negative shares, or all zero, are rejected)."""

    classes: tuple[RequestClass, ...]
    arrival: Arrival
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        classes = tuple(self.classes)
        _check(len(classes) > 0, "classes must list at least one request class")
        _check(all(isinstance(c, RequestClass) for c in classes), "classes must be RequestClass objects")
        names = [c.name for c in classes]
        _check(len(set(names)) == len(names), f"class names must be unique, got {names}")
        total = sum(c.share for c in classes)
        _check(total > 0, "shares must have a positive sum")
        object.__setattr__(self, "classes", tuple(replace(c, share=c.share / total) for c in classes))
        _check(isinstance(self.arrival, (Poisson, Gamma, Closed, Offline, Trace)),
               f"arrival must be one of {', '.join(ARRIVAL_KINDS)}, got {type(self.arrival).__name__}")

    @property
    def open_loop(self) -> bool:
        return not isinstance(self.arrival, Closed)

    def with_arrival(self, arrival: Arrival) -> Workload:
        return replace(self, arrival=arrival)

    def with_rate(self, rate: float) -> Workload:
        """The same mix at another session rate (Poisson or gamma; a gamma keeps its cv)."""
        if isinstance(self.arrival, Gamma):
            return self.with_arrival(Gamma(rate, self.arrival.cv))
        _check(isinstance(self.arrival, Poisson),
               f"with_rate needs a poisson or gamma arrival, this workload's is {type(self.arrival).__name__.lower()}")
        return self.with_arrival(Poisson(rate))

    def mean_turns(self) -> float:
        """Expected requests per session over the mix (1 for single-turn traffic)."""
        return sum(c.share * (c.turns.mean if c.turns else 1.0) for c in self.classes)

    def mean_lengths(self, n: int = 20000, seed: int = 0) -> tuple[float, float]:
        """Request-weighted mean prompt and output tokens, shared prefixes and session history included
        (what an analytic cost model must charge per request), from a seeded sample of the mix."""
        table = self.requests(n, seed)
        return float(table.input_len.mean()), float(table.output_len.mean())

    # generation ------------------------------------------------------------------------------------
    def requests(self, n: int, seed: int) -> RequestTable:
        """The first `n` requests for `seed` (the same rows as concatenating `chunks(n, seed)`)."""
        return RequestTable.concat(self._stream(n, seed))

    def chunks(self, n: int, seed: int, chunk: int = 65536) -> Iterator[RequestTable]:
        """`requests(n, seed)` in pieces of about `chunk` rows, never splitting a session (a piece ends
        at a session boundary, so it may be a little shorter or, for one very long session, longer)."""
        _check(isinstance(chunk, (int, np.integer)) and chunk >= 1, f"chunk must be an integer >= 1, got {chunk!r}")
        buf: list[RequestTable] = []
        held = 0
        for block in self._stream(n, seed):
            buf.append(block)
            held += len(block)
            while held > chunk:
                table = RequestTable.concat(buf)
                starts = np.flatnonzero(table.turn == 0)
                cut_candidates = starts[(starts > 0) & (starts <= chunk)]
                if len(cut_candidates):
                    cut = int(cut_candidates[-1])
                else:
                    later = starts[starts > chunk]
                    if not len(later):
                        buf, held = [table], len(table)
                        break
                    cut = int(later[0])
                yield table[:cut]
                rest = table[cut:]
                buf, held = [rest], len(rest)
        if held:
            yield RequestTable.concat(buf)

    def _stream(self, n: int, seed: int) -> Iterator[RequestTable]:
        _check(isinstance(n, (int, np.integer)) and n >= 0, f"n must be an integer >= 0, got {n!r}")
        rng = np.random.Generator(np.random.PCG64(seed))
        times = self.arrival.times() if isinstance(self.arrival, Trace) else None
        _check(times is None or len(times) > 0, "arrival trace has no rows")
        state = {"t": 0.0, "s": 0}
        emitted = 0
        while emitted < n:
            block = self._block(rng, state, times)
            if emitted + len(block) >= n:
                block = block[: n - emitted]
                block.cache_group[-1] = -1   # the run ends here: nothing reuses the last row
            emitted += len(block)
            yield block

    def _block(self, rng: np.random.Generator, state: dict[str, Any], times: np.ndarray | None) -> RequestTable:
        """SESSIONS_PER_BLOCK sessions, all their turns, drawn in a fixed order from `rng`."""
        b = SESSIONS_PER_BLOCK
        n_cls = len(self.classes)
        s0 = state["s"]
        cdf = np.cumsum([c.share for c in self.classes])
        cls = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(b), side="right"), n_cls - 1)

        sessions = s0 + np.arange(b, dtype=np.int64)
        arr = self.arrival
        if isinstance(arr, (Poisson, Gamma)):
            gaps = arr.gaps(rng, b)
            t_sess = state["t"] + np.concatenate(([0.0], np.cumsum(gaps[:-1])))
            state["t"] = float(t_sess[-1] + gaps[-1])
        elif isinstance(arr, Closed):
            t_sess = np.where(sessions < arr.concurrency, 0.0, np.nan)
        elif isinstance(arr, Offline):
            t_sess = np.zeros(b)
        else:
            assert times is not None
            m = len(times)
            span = float(times[-1] - times[0])
            period = span + (span / (m - 1) if m > 1 else 1.0)
            t_sess = times[sessions % m] + (sessions // m) * period
        state["s"] = s0 + b

        turns = np.ones(b, dtype=np.int64)
        for c, rc in enumerate(self.classes):
            if rc.turns is not None:
                idx = np.flatnonzero(cls == c)
                turns[idx] = rc.turns.sample(rng, len(idx))
        rows = int(turns.sum())
        first = np.concatenate(([0], np.cumsum(turns)[:-1]))
        row_sess = np.repeat(np.arange(b), turns)
        turn = np.arange(rows, dtype=np.int64) - first[row_sess]
        row_cls = cls[row_sess]

        new = np.empty(rows, dtype=np.int64)
        out = np.empty(rows, dtype=np.int64)
        think = np.zeros(rows)
        prefix = np.array([c.shared_prefix for c in self.classes], dtype=np.int64)
        for c, rc in enumerate(self.classes):
            idx = np.flatnonzero(row_cls == c)
            new[idx] = rc.input_len.sample(rng, len(idx))
            out[idx] = rc.output_len.sample(rng, len(idx))
            if rc.think_s is not None:
                later = idx[turn[idx] > 0]
                think[later] = rc.think_s.sample_seconds(rng, len(later))

        # history: turn k's prompt = shared prefix + new tokens of turns 0..k + outputs of turns 0..k-1
        start = first[row_sess]
        cum_new = np.cumsum(new)
        cum_out_excl = np.cumsum(out) - out
        inp = prefix[row_cls] + (cum_new - cum_new[start] + new[start]) + (cum_out_excl - cum_out_excl[start])

        follow = turn > 0
        sess_group = n_cls + sessions[row_sess]
        class_group = np.where(prefix[row_cls] > 0, row_cls, -1)
        prefix_group = np.where(follow, sess_group, class_group)
        prefix_len = np.where(follow, inp - new, prefix[row_cls])
        last = turn == turns[row_sess] - 1
        cache_group = np.where(last, -1, sess_group)
        arrival = np.where(follow, np.nan, t_sess[row_sess])
        return RequestTable(
            arrival=arrival.astype(np.float64), input_len=inp, output_len=out, class_id=row_cls.astype(np.int64),
            session=sessions[row_sess], turn=turn, think_s=think, prefix_group=prefix_group.astype(np.int64),
            prefix_len=prefix_len.astype(np.int64), cache_group=cache_group.astype(np.int64),
        )


def fixed(input_len: int, output_len: int, rate: float | None = None, concurrency: int | None = None) -> Workload:
    """One class of fixed lengths (the `--input-len/--output-len` case), open loop at `rate` (Poisson) or
    closed loop at `concurrency`; neither means offline (everything at t = 0)."""
    _check(rate is None or concurrency is None, "give rate or concurrency, not both")
    for name, v in (("input_len", input_len), ("output_len", output_len)):
        _check(isinstance(v, (int, np.integer)) and v >= 1, f"{name} must be an integer >= 1 tokens, got {v!r}")
    arrival: Arrival = Poisson(rate) if rate is not None else Closed(concurrency) if concurrency is not None \
        else Offline()
    cls = RequestClass("fixed", 1.0, LengthDist.fixed(input_len), LengthDist.fixed(output_len), None)
    return Workload((cls,), arrival, f"fixed {input_len} in / {output_len} out")


# --------------------------------------------------------------------------------------------------
# Workload files and presets (YAML, validated with pydantic)
# --------------------------------------------------------------------------------------------------


def _allowed_fields(loc: tuple[Any, ...]) -> str:
    from tokenfab.workload_schema import _MODEL_AT, _ClassModel, _WorkloadModel
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
    from tokenfab.workload_schema import _DistModel
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

    from tokenfab.workload_schema import _WorkloadModel
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


# --------------------------------------------------------------------------------------------------
# Trace readers
# --------------------------------------------------------------------------------------------------

TRACE_FORMATS = ("azure", "burstgpt", "mooncake")
MOONCAKE_BLOCK = 512            # tokens per hash_ids block in the Mooncake traces
_AZURE_COLS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_BURST_COLS = ("Timestamp", "Request tokens", "Response tokens")


def _sniff(path: Path) -> str:
    with path.open(newline="") as fh:
        first = ""
        for line in fh:
            if line.strip():
                first = line.strip()
                break
    if first.startswith("{"):
        return "mooncake"
    if first.startswith("["):
        raise WorkloadError(f"{path}: a JSON list (ShareGPT conversations?) has no arrival times, so it is not a "
                            "trace; serve it with `tokenfab simulate --workload FILE --rate R`")
    header = next(csv.reader([first]), [])
    header = [h.strip() for h in header]
    if all(c in header for c in _AZURE_COLS):
        return "azure"
    if all(c in header for c in _BURST_COLS):
        return "burstgpt"
    raise WorkloadError(
        f"{path}: trace format not recognised: expected an Azure CSV ({', '.join(_AZURE_COLS)}), a BurstGPT CSV "
        f"({', '.join(_BURST_COLS)}, ...) or Mooncake JSONL (timestamp, input_length, output_length, hash_ids)")


def _int_column(values: list[str], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        arr = np.array(values).astype(np.int64) if values else np.empty(0, np.int64)
    except (ValueError, OverflowError):
        arr = None
    if arr is None or (arr < 0).any():
        for v, ln in zip(values, lines, strict=True):
            try:
                ok = int(v) >= 0
            except ValueError:
                ok = False
            if not ok:
                raise WorkloadError(f"{path}:{ln}: field {name!r} is {v!r}: expected an integer >= 0") from None
    return arr


def _float_column(values: list[str], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        arr = np.array(values).astype(np.float64) if values else np.empty(0)
        if np.isfinite(arr).all():
            return arr
    except ValueError:
        pass
    for v, ln in zip(values, lines, strict=True):
        try:
            ok = math.isfinite(float(v))
        except ValueError:
            ok = False
        if not ok:
            raise WorkloadError(f"{path}:{ln}: field {name!r} is {v!r}: expected a number of seconds")
    raise AssertionError("unreachable")


def _frac_and_offset(rest: str) -> float:
    """Seconds to add for the part of an ISO timestamp after HH:MM:SS ('.6805900', '+00:00', 'Z')."""
    tz = 0.0
    if rest.endswith("Z"):
        rest = rest[:-1]
    elif len(rest) >= 6 and rest[-6] in "+-" and rest[-3] == ":":
        sign = 1.0 if rest[-6] == "+" else -1.0
        tz = sign * (int(rest[-5:-3]) * 3600 + int(rest[-2:]) * 60)
        rest = rest[:-6]
    if not rest:
        return -tz
    if rest[0] != "." or not rest[1:].isdigit():
        raise ValueError(rest)
    return float(rest) - tz


def _datetime_column(values: list[str], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Seconds since the epoch of 'YYYY-MM-DD HH:MM:SS[.fffffff][+HH:MM|Z]' strings, as float64."""
    def bad(v: str, ln: int) -> WorkloadError:
        return WorkloadError(f"{path}:{ln}: field {name!r} is {v!r}: expected a datetime like 2023-11-16 18:15:46.68")

    if values and min(map(len, values)) >= 19:
        try:   # fast path: NumPy parses the whole column (no time-zone suffix)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ns = np.array(values, dtype="datetime64[ns]").astype(np.int64)
            return ns / 1e9
        except (ValueError, UserWarning, DeprecationWarning):
            pass
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            _check(len(v) >= 19 and v[10] in " T", "")
            out[i] = float(np.datetime64(v[:19], "s").astype(np.int64)) + _frac_and_offset(v[19:])
        except (ValueError, WorkloadError):
            raise bad(v, int(lines[i])) from None
    return out


def _split_rows(lines: list[str], width: int, first_line: int, path: Path,
                header: list[str]) -> tuple[list[list[str]], np.ndarray]:
    """Columns of a slice of CSV lines, with their line numbers. Fast path: one join and split in C
    when no line is blank or quoted; otherwise the csv module, row by row."""
    numbers = first_line + np.arange(len(lines))
    if not any('"' in ln for ln in lines):
        text = "".join(lines).replace("\r\n", "\n")
        flat = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
        if all(flat):
            fields_ = ",".join(flat).split(",")
            if len(fields_) == width * len(flat):
                return [[v.strip() for v in fields_[k::width]] for k in range(width)], numbers
    rows, kept = [], []
    for row, ln in zip(csv.reader(lines), numbers, strict=True):
        if not row:
            continue
        if len(row) != width:
            raise WorkloadError(f"{path}:{ln}: expected {width} fields ({', '.join(header)}), got {len(row)}")
        rows.append(row)
        kept.append(ln)
    if not rows:
        return [[] for _ in range(width)], np.empty(0, np.int64)
    return [[v.strip() for v in col] for col in zip(*rows, strict=True)], np.array(kept)


def _csv_chunks(path: Path, fmt: str, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(timestamp seconds, input, output) per chunk of a CSV trace, rows with 0 input or output dropped.
    Line numbers assume one line per row, which holds for these formats (no quoted newlines)."""
    cols = _AZURE_COLS if fmt == "azure" else _BURST_COLS
    with path.open(newline="") as fh:
        header_line = fh.readline()
        _check(header_line.strip() != "", f"{path}: empty trace file")
        header = [h.strip() for h in next(csv.reader([header_line]))]
        missing = [c for c in cols if c not in header]
        _check(not missing, f"{path}:1: header lacks {', '.join(missing)}: a {fmt} trace has columns {', '.join(cols)}")
        idx = [header.index(c) for c in cols]
        first_line = 2
        while True:
            lines = list(islice(fh, chunk))
            if not lines:
                return
            columns, numbers = _split_rows(lines, len(header), first_line, path, header)
            first_line += len(lines)
            if not len(numbers):
                continue
            ts, ins, outs = (columns[k] for k in idx)
            t = (_datetime_column if fmt == "azure" else _float_column)(ts, numbers, cols[0], path)
            i_arr = _int_column(ins, numbers, cols[1], path)
            o_arr = _int_column(outs, numbers, cols[2], path)
            keep = (i_arr > 0) & (o_arr > 0)
            yield t[keep], i_arr[keep], o_arr[keep]


def _mooncake_chunks(path: Path, chunk: int) -> Iterator[tuple[np.ndarray, ...]]:
    """(timestamp seconds, input, output, prefix_group, prefix_len, row id) per chunk of a Mooncake JSONL."""
    owner = array("q")          # hash id -> first row whose prompt holds that block (-1 = unseen)
    row = 0
    with path.open() as fh:
        lineno = 0
        while True:
            cols: list[list[Any]] = [[], [], [], [], [], []]
            for line in fh:
                lineno += 1
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as err:
                    raise WorkloadError(f"{path}:{lineno}: not valid JSON: {err.msg}") from None
                _check(isinstance(rec, dict), f"{path}:{lineno}: expected a JSON object")
                vals = []
                for name in ("timestamp", "input_length", "output_length"):
                    v = rec.get(name)
                    ok = _finite(v) and v >= 0 and (name == "timestamp" or float(v).is_integer())
                    _check(ok, f"{path}:{lineno}: field {name!r} is {v!r}: expected "
                               f"{'a number of milliseconds' if name == 'timestamp' else 'an integer >= 0'}")
                    vals.append(v)
                ids = rec.get("hash_ids", [])
                _check(isinstance(ids, list) and all(isinstance(h, int) and not isinstance(h, bool) and h >= 0
                                                     for h in ids),
                       f"{path}:{lineno}: field 'hash_ids' is {ids!r}: expected a list of integers >= 0")
                t, n_in, n_out = float(vals[0]), int(vals[1]), int(vals[2])
                if n_in <= 0 or n_out <= 0:
                    continue
                top = max(ids, default=-1)
                if top >= len(owner):
                    owner.extend([-1] * (top + 1 - len(owner) + len(owner) // 2))
                m = 0
                while m < len(ids) and owner[ids[m]] >= 0:
                    m += 1
                group = owner[ids[m - 1]] if m else -1
                for h in ids[m:]:
                    owner[h] = row
                for col, v in zip(cols, (t / 1000.0, n_in, n_out, group, min(m * MOONCAKE_BLOCK, n_in), row),
                                  strict=True):
                    col.append(v)
                row += 1
                if len(cols[0]) >= chunk:
                    break
            if not cols[0]:
                return
            yield (np.array(cols[0], np.float64), *(np.array(c, np.int64) for c in cols[1:]))


def iter_trace(path: str | Path, format: str | None = None, chunk: int = 65536,
               ordered: bool = True) -> Iterator[RequestTable]:
    """A trace file as RequestTables of up to `chunk` rows, in file order, streaming (bounded memory).

    Arrivals are seconds after the file's first row. Rows with 0 input or 0 output tokens are dropped:
    they are failed requests (BurstGPT marks failures by 0 response tokens) and nothing can be served
    for them. Each row is its own single-turn session of class 0. Mooncake hash_ids (512-token prefix
    blocks) give prefix_group = the first earlier row holding the longest already-seen run of leading
    blocks and prefix_len = that run in tokens (capped at input_len); every Mooncake row publishes its
    context as cache_group = its own row id. Azure and BurstGPT rows carry no prefix information (-1).
    `ordered`: a row earlier than the one before is an error naming it (a stream cannot be sorted); `read_trace`
    reads whole files and sorts them instead.
    """
    p = Path(path)
    _check(p.is_file(), f"trace file {str(p)!r} not found")
    fmt = format or _sniff(p)
    _check(fmt in TRACE_FORMATS, f"trace format {fmt!r} unknown: allowed {', '.join(TRACE_FORMATS)}")
    source = _mooncake_chunks(p, chunk) if fmt == "mooncake" else _csv_chunks(p, fmt, chunk)
    t0: float | None = None
    last = -math.inf
    row = 0
    for parts in source:
        t, n_in, n_out = parts[0], parts[1], parts[2]
        n = len(t)
        if n == 0:
            continue
        if t0 is None:
            t0 = float(t[0])
        # a stream is replayed in file order: a row earlier than the one before would be served out of time
        back = np.flatnonzero(np.diff(np.concatenate(([last], t))) < 0) if ordered else np.array([], np.int64)
        if back.size:
            i = int(back[0])
            _check(False, f"{p}: request {row + i + 1}: timestamp {float(t[i]):g} is earlier than the request "
                          "before it; sort the trace by time (the simulator replays it in order)")
        last = float(t[-1])
        ids = np.arange(row, row + n, dtype=np.int64)
        if fmt == "mooncake":
            group, plen, cache_group = parts[3], parts[4], parts[5]
        else:
            group, plen, cache_group = np.full(n, -1, np.int64), np.zeros(n, np.int64), np.full(n, -1, np.int64)
        yield RequestTable(arrival=t - t0, input_len=n_in, output_len=n_out, class_id=np.zeros(n, np.int64),
                           session=ids, turn=np.zeros(n, np.int64), think_s=np.zeros(n), prefix_group=group,
                           prefix_len=plen, cache_group=cache_group)
        row += n


def read_trace(path: str | Path, format: str | None = None) -> RequestTable:
    """A whole trace file as one RequestTable (format sniffed from the header / first line when not
    given: azure, burstgpt or mooncake). Rows are sorted by arrival (stably, only if the file is not)
    and arrivals shifted so that the earliest is 0. See `iter_trace` for the row rules."""
    table = RequestTable.concat(iter_trace(path, format, ordered=False))
    if len(table) and (np.diff(table.arrival) < 0).any():
        table = table[np.argsort(table.arrival, kind="stable")]
    if len(table) and table.arrival[0] != 0.0:
        table = replace(table, arrival=table.arrival - table.arrival[0])
    return table
