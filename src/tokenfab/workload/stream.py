"""`Workload` (a mix of request classes plus an arrival process) and the seeded, block-wise stream of
`RequestTable` rows it generates; `fixed` for one class of fixed lengths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tokenfab.workload.arrivals import (
    ARRIVAL_KINDS,
    Arrival,
    Closed,
    Gamma,
    Offline,
    Poisson,
    Trace,
    closed_loop_times,
    open_loop_times,
)
from tokenfab.workload.classes import LengthDist, RequestClass
from tokenfab.workload.errors import _check
from tokenfab.workload.table import RequestTable

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
            t_sess, state["t"] = open_loop_times(arr, rng, b, state["t"])
        elif isinstance(arr, Closed):
            t_sess = closed_loop_times(arr, sessions)
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
