"""Replicas behind a router, optionally split into prefill and decode pools, driven by a request stream.

The event loop always moves the replica that is furthest behind, by one step or one decode run, and
routes each arrival once every busy replica has reached its time, so the router sees each replica's state
at (at most one step past) the arrival. Follow-up turns, closed-loop requests and P/D hand-offs are
arrivals created during the run; when they can occur, runs are also bounded by the next replica's clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from heapq import heappop, heappush

from tokenfab.perf.steptimer import StepTimer
from tokenfab.serve.engine import BLOCK_TOKENS, EngineConfig, Replica, Seq, StepLog
from tokenfab.workload import RequestTable

ROUTERS = ("round-robin", "least-outstanding", "prefix-affinity")


@dataclass(frozen=True)
class Pools:
    """Replica counts: `replicas` serving both phases, or `prefill` + `decode` pools (P/D disaggregation)."""

    replicas: int = 1
    prefill: int = 0
    decode: int = 0
    router: str = "least-outstanding"

    @property
    def disaggregated(self) -> bool:
        return self.prefill > 0


# one request row: (rid, arrival, input, output, class, session, turn, think, prefix group, prefix len,
# cache group)
Row = tuple[int, float, int, int, int, int, int, float, int, int, int]


class RequestFeed:
    """Rows in arrival order from a stream of chunks; follow-up turns and closed-loop rows kept aside."""

    def __init__(self, chunks: Iterable[RequestTable]) -> None:
        self._chunks = iter(chunks)
        self._rows: Iterator[Row] = iter(())
        self._next_id = 0
        self.static: deque[Row] = deque()
        self.closed: deque[Row] = deque()
        self.followups: dict[int, deque[Row]] = {}
        self._exhausted = False

    def _read_chunk(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._exhausted = True
            return False
        n = len(chunk.input_len)
        ids = range(self._next_id, self._next_id + n)
        self._next_id += n
        self._rows = zip(ids, chunk.arrival.tolist(), chunk.input_len.tolist(), chunk.output_len.tolist(),
                         chunk.class_id.tolist(), chunk.session.tolist(), chunk.turn.tolist(), chunk.think_s.tolist(),
                         chunk.prefix_group.tolist(), chunk.prefix_len.tolist(), chunk.cache_group.tolist(),
                         strict=True)
        return True

    def _read_one(self) -> bool:
        """Read one row into the queue it belongs to; False once the stream is exhausted."""
        row = next(self._rows, None)
        while row is None:
            if not self._read_chunk():
                return False
            row = next(self._rows, None)
        if row[6] > 0:
            self.followups.setdefault(row[5], deque()).append(row)
        elif math.isnan(row[1]):
            self.closed.append(row)
        else:
            self.static.append(row)
        return True

    def peek_time(self) -> float:
        """Arrival time of the next timed row (reading ahead past untimed rows)."""
        while not self.static and not self._exhausted and self._read_one():
            pass
        return self.static[0][1] if self.static else math.inf

    def next_turn(self, session: int) -> Row | None:
        """The next turn of a session (its rows follow the first turn in the stream)."""
        turns = self.followups.get(session)
        if not turns:
            if turns is not None:
                del self.followups[session]
            return None
        row = turns.popleft()
        if not turns:
            del self.followups[session]
        return row


Finished = Callable[[Seq, float], None]


class Cluster:
    """The replicas, the router and the event loop."""

    def __init__(self, timer: StepTimer, cfg: EngineConfig, pools: Pools, transfer_s: Callable[[int], float],
                 on_done: Finished, log_step: StepLog) -> None:
        if pools.router not in ROUTERS:
            raise ValueError(f"router = {pools.router!r}: allowed {', '.join(ROUTERS)}")
        self.pools, self.transfer_s, self.on_done = pools, transfer_s, on_done
        if pools.disaggregated:
            prefill_cfg = _with_role(cfg, "prefill")
            decode_cfg = _with_role(cfg, "decode")
            self.front = [Replica(i, timer, prefill_cfg, self._leave, log_step) for i in range(pools.prefill)]
            self.back = [Replica(pools.prefill + i, timer, decode_cfg, self._leave, log_step)
                         for i in range(pools.decode)]
        else:
            self.front = [Replica(i, timer, cfg, self._leave, log_step) for i in range(pools.replicas)]
            self.back = []
        self.replicas = self.front + self.back
        # (time, order, kind, payload); kind 0: a request row arrives, 1: a P/D hand-off reaches the decode
        # pool, 2: a row the client held back is sent
        self.events: list[tuple[float, int, int, object]] = []
        self._order = 0
        self._rr = 0
        self._affinity: dict[int, int] = {}
        self.feed: RequestFeed | None = None
        self.first_arrival = math.nan
        self.last_arrival = math.nan
        self.tokens_at_last_arrival = 0   # output tokens generated when the last timed arrival came in
        # a second snapshot at the first arrival from `mark_time` on: the rate over the run's later part
        self.mark_time = math.inf
        self.mark_arrival = math.nan
        self.tokens_at_mark = 0
        # the client's cap on requests in flight (a benchmark's --max-concurrency): arrivals past it wait at
        # the client and are sent as requests finish, their clocks (TTFT) starting when sent
        self.max_in_flight: float = math.inf
        self.in_flight = 0
        self.held: deque[Row] = deque()
        self.released = 0   # held rows sent at a finish, their events not yet handled: their slots are taken
        # a timeline's hooks (None when no trace is asked for): a request enters a replica at a time (routed, or
        # handed to a decode replica: the flag), and a P/D request leaves its prefill replica
        self.on_enter: Callable[[Seq, float, bool], None] | None = None
        self.on_handoff: Finished | None = None

    # --- routing ---------------------------------------------------------------------------------

    def _pick(self, pool: list[Replica], group: int) -> Replica:
        if len(pool) == 1:
            return pool[0]
        router = self.pools.router
        if router == "round-robin":
            self._rr += 1
            return pool[self._rr % len(pool)]
        if router == "prefix-affinity" and group >= 0:
            index = self._affinity.get(group)
            if index is None:
                index = min(range(len(pool)), key=lambda i: pool[i].outstanding)
                self._affinity[group] = index
            return pool[index]
        return min(pool, key=lambda r: r.outstanding)

    def fits(self, seq: Seq) -> bool:
        """Whether the request's whole context (prompt + output) fits one replica's KV pool. With on-demand
        allocation too: vLLM refuses a request longer than max_model_len, which it holds within the pool, and
        a sequence that outgrew the pool would be preempted and recomputed for ever."""
        return seq.prompt + seq.out_len + BLOCK_TOKENS <= self.replicas[0].cfg.kv_tokens

    def _push(self, time: float, kind: int, payload: object) -> None:
        self._order += 1
        heappush(self.events, (time, self._order, kind, payload))

    def _dispatch(self, row: Row, now: float) -> None:
        rid, _, isl, osl, cls, session, turn, _, group, prefix, publish = row   # Python ints (read with tolist)
        self.in_flight += 1
        accept = self.replicas[0].cfg.accept
        # under speculative decoding a sequence emits `accept` tokens a step: it needs fewer decode steps
        steps = osl if accept <= 1.0 else 1 + math.ceil((osl - 1) / accept)
        seq = Seq(rid, now, isl, steps, group, prefix, (cls, session, turn), publish)
        seq.tokens = max(osl, 1)
        if self.fits(seq):
            front = self.front
            self._enqueue(front[0] if len(front) == 1 else self._pick(front, seq.group), seq, now)
        else:
            seq.preemptions = -1   # rejected: it can never fit this replica's KV cache
            self._leave(seq, now)

    def _leave(self, seq: Seq, now: float) -> None:
        if self.back and seq.generated < seq.out_len and seq.preemptions >= 0:   # P/D: KV moves to a decode replica
            if self.on_handoff is not None:
                self.on_handoff(seq, now)
            self._push(now + self.transfer_s(seq.prompt), 1, seq)
            return
        self.on_done(seq, now)
        self.in_flight -= 1
        if self.held:
            self.released += 1
            self._push(now, 2, self.held.popleft())
        feed = self.feed
        assert feed is not None
        nxt = feed.next_turn(seq.info[1]) if feed.followups and isinstance(seq.info, tuple) else None
        if nxt is not None:
            self._push(now + nxt[7], 0, nxt)
        elif feed.closed:   # closed loop: the user whose request finished sends the next one
            self._push(now, 0, feed.closed.popleft())

    # --- the loop --------------------------------------------------------------------------------

    def _enqueue(self, replica: Replica, seq: Seq, now: float, decode: bool = False) -> None:
        """Hand a request to a replica at time `now`; a replica in the middle of a decode run first runs
        to the boundary where the request can join."""
        if self._deferred[replica.index]:
            replica.act(horizon=now)
            self._deferred[replica.index] = False
        if decode:
            replica.enqueue_decode(seq, now)
        else:
            replica.enqueue(seq, now)
        if self.on_enter is not None:
            self.on_enter(seq, now, decode)
        self._schedule(replica, replica.clock)

    def _schedule(self, replica: Replica, when: float) -> None:
        """(Re)file the time a replica next needs the loop; older entries of it go stale."""
        i = replica.index
        v = self._version[i] = self._version[i] + 1
        heappush(self._ready, (when, v, i))

    def run(self, feed: RequestFeed, progress: Callable[[], None] | None = None) -> None:
        """Discrete-event loop. A replica's next action is an event: a step it takes now, or a decode run,
        known in closed form, that ends at its next finish. Arrivals are routed when every replica has
        taken all actions that end before them, so the router sees exact state; only the chosen replica's
        run is cut at the arrival."""
        self.feed = feed
        self._ready: list[tuple[float, int, int]] = []     # (time, version, replica)
        self._version = [0] * len(self.replicas)
        self._deferred = [False] * len(self.replicas)
        ready, replicas, deferred, version = self._ready, self.replicas, self._deferred, self._version
        static, events = feed.static, self.events
        while True:
            t_static = static[0][1] if static else feed.peek_time()
            t_event = events[0][0] if events else math.inf
            t_arr = t_static if t_static < t_event else t_event
            while ready and ready[0][1] != version[ready[0][2]]:
                heappop(ready)
            if not ready or t_arr <= ready[0][0]:
                if t_arr == math.inf:
                    break
                if t_event <= t_static:
                    _, _, kind, payload = heappop(events)
                    if kind == 2:   # a held row the client sends now that a request has finished
                        self.released -= 1
                    if kind != 1:
                        self._dispatch(payload, t_arr)   # type: ignore[arg-type]
                    else:
                        seq = payload
                        self._enqueue(self._pick(self.back, seq.group), seq, t_arr, decode=True)  # type: ignore
                else:
                    row = static.popleft()
                    if self.in_flight + self.released < self.max_in_flight:
                        self._dispatch(row, t_arr)
                    else:
                        self.held.append(row)
                    if self.first_arrival != self.first_arrival:   # NaN: the first timed arrival
                        self.first_arrival = t_arr
                    if t_arr >= self.mark_time and self.mark_arrival != self.mark_arrival:
                        self.mark_arrival = t_arr
                        self.tokens_at_mark = sum(r.tokens_out for r in replicas)
                    if feed.peek_time() == math.inf:    # the last timed arrival: snapshot the steady window
                        self.last_arrival = t_arr
                        self.tokens_at_last_arrival = sum(r.tokens_out for r in replicas)
                    if progress is not None:
                        progress()
                continue
            _, _, index = heappop(ready)
            r = replicas[index]
            if deferred[index]:
                deferred[index] = False
                r.act()
            else:
                after = r.act(defer_past=t_arr)
                if after != after:   # NaN: nothing could run
                    raise RuntimeError(f"replica {index} cannot schedule its queue: a request needs more KV "
                                       "cache than the replica holds")
                if after > r.clock:
                    deferred[index] = True
                    self._schedule(r, after)
                    continue
            if r.waiting or r.prefilling or r.decoding:   # r.busy
                self._schedule(r, r.clock)


def _with_role(cfg: EngineConfig, role: str) -> EngineConfig:
    return replace(cfg, role=role)
