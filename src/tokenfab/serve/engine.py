"""One model replica with iteration-level scheduling, the way vLLM and TensorRT-LLM batch.

Each engine step decodes one token for every running sequence and fills the rest of the token budget
with prompt chunks (chunked prefill), first come first served. KV memory is a pool of tokens sized by
the step-cost model's capacity after weights: TensorRT-LLM's no-evict policy reserves a request's whole
prompt + output at admission; vLLM allocates as the sequence grows and preempts the newest sequence
(recompute, or swap over the host link) when the pool runs dry. Prompts that start with a prefix still
in the cache (a system prompt, a conversation's history) skip those tokens.

Between two events nothing changes the batch, so a run of pure decode steps is advanced at once: its
step times grow linearly with context, and the run ends at the next finish, the next arrival, or when
the KV pool would overflow. That keeps the cost per simulated request at a few microseconds.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

import numpy as np

from tokenfab.perf.steptimer import StepTimer

# vLLM's KV block; a sequence wastes half a block on average at its tail.
BLOCK_TOKENS = 16


@dataclass(frozen=True)
class EngineConfig:
    """The scheduler limits and memory policy of one replica."""

    kv_tokens: int                   # KV pool of the replica, in tokens
    max_batch: int                   # sequences in flight (prefilling + decoding)
    token_budget: int                # tokens per step (decode tokens + prompt chunk)
    reserve_full: bool               # admit only if prompt + whole output fits (no eviction ever)
    preemption: str = "recompute"    # or "swap": move the victim's KV to host memory and back
    prefix_caching: bool = True
    kv_bytes_per_token: float = 0.0  # per replica, for swap and P/D transfer times
    host_bw: float = 0.0             # replica's host link bandwidth (all its chips), B/s
    role: str = "both"               # "both", "prefill" (P/D: hand off after the first token) or "decode"
    max_run: int = 1 << 62           # longest decode run advanced at once (1 = step by step, for checks)
    chunk_unit: int = 1              # prompt tokens per step in multiples of this (TensorRT-LLM's chunk unit)
    accept: float = 1.0              # tokens a decode step emits per sequence (speculative decoding's acceptance)


class Seq:
    """A request inside a replica. Decode progress is kept as (join step, tokens at join) so that a run of
    k steps updates the replica, not every sequence."""

    __slots__ = ("rid", "arrival", "prompt", "out_len", "group", "prefix_len", "info", "target", "done", "hit",
                 "generated", "first_t", "admit_t", "join_step", "gen_at_join", "ctx_at_join", "finish_step",
                 "order", "reserved", "holds_ref", "swapped", "preemptions", "replica", "cache_group", "tokens")

    def __init__(self, rid: int, arrival: float, prompt: int, out_len: int, group: int = -1, prefix_len: int = 0,
                 info: object = None, cache_group: int = -1) -> None:
        self.rid, self.arrival, self.prompt, self.out_len = rid, arrival, prompt, max(out_len, 1)
        self.tokens = self.out_len   # tokens the user receives; out_len counts the steps that emit them
        self.group, self.prefix_len, self.info = group, prefix_len, info
        self.target = prompt      # tokens that must be in KV before decoding (prompt, or prompt + output on recompute)
        self.done = 0             # of those, tokens in KV (computed or cached)
        self.hit = 0              # prompt tokens served from the prefix cache
        self.generated = 0
        self.first_t = math.nan
        self.admit_t = math.nan
        self.join_step = self.gen_at_join = self.ctx_at_join = self.finish_step = self.order = 0
        self.reserved = 0         # KV tokens held by this sequence alone (a cached prefix is counted apart)
        self.holds_ref = False    # uses its group's cache entry
        self.swapped = False
        self.preemptions = 0
        self.replica = -1
        self.cache_group = cache_group   # the stream this request's whole context publishes when it finishes


# the cluster's callback when a sequence leaves a replica (finished, rejected, or handed to a decode pool)
Callback = Callable[[Seq, float], None]
StepLog = Callable[[int, float, float, float, float, float, float], None]


class Replica:
    """Scheduler state of one replica. `act(horizon)` advances it by one step or one decode run."""

    def __init__(self, index: int, timer: StepTimer, cfg: EngineConfig, on_leave: Callback, log_step: StepLog) -> None:
        self.index, self.timer, self.cfg = index, timer, cfg
        self.on_leave, self.log_step = on_leave, log_step
        self.clock = 0.0
        self.steps = 0                   # decode steps taken (finish steps are counted on this clock)
        self.waiting: deque[Seq] = deque()
        self.prefilling: list[Seq] = []
        self.decoding: list[tuple[int, int, Seq]] = []   # heap of (finish step, order, seq)
        self.decode_ctx = 0.0            # sum of context lengths the next decode step attends to
        self.kv_used = 0                 # tokens held by sequences + cached prefixes
        # prefix group -> [tokens a prompt can reuse, tokens the entry holds alone, users]; a session's history
        # entry reuses its parent's tokens, so it holds only what its own turn added
        self.cache: OrderedDict[int, list[int]] = OrderedDict()
        self.cache_idle = 0              # cached tokens no running sequence uses (evictable)
        self._order = 0
        self.outstanding = 0             # prompt + output tokens of requests not finished (router's view)
        self.stall = 0.0                 # time added to the next step (swap traffic)
        self._planned = False            # a decode run was decided at this boundary but not yet taken
        self._plan: tuple[int, float] | None = None   # that run's (steps, duration) when it runs to its finish
        self.busy_time = 0.0             # seconds spent stepping
        self.kv_token_seconds = 0.0      # integral of KV in use over busy time
        self.kv_peak = 0                 # most KV tokens ever in use
        self.tokens_out = 0              # output tokens generated so far

    # --- admission -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.prefilling or self.decoding)

    @property
    def running(self) -> int:
        return len(self.prefilling) + len(self.decoding)

    def enqueue(self, seq: Seq, now: float) -> None:
        if not (self.waiting or self.prefilling or self.decoding):   # idle: its clock jumps to the arrival
            self.clock = max(self.clock, now)
        self.outstanding += seq.prompt + seq.out_len
        seq.replica = self.index
        self.waiting.append(seq)

    def enqueue_decode(self, seq: Seq, now: float) -> None:
        """P/D: a sequence whose prompt KV (and first token) came from a prefill replica."""
        seq.done = seq.target = seq.prompt
        seq.generated = max(seq.generated, 1)
        seq.hit = 0
        self.enqueue(seq, now)

    def _room(self) -> int:
        return self.cfg.kv_tokens - self.kv_used + self.cache_idle

    def _take(self, tokens: int) -> bool:
        """Claim KV tokens, evicting idle cached prefixes (least recently used first) if needed."""
        free = self.cfg.kv_tokens - self.kv_used
        if free + self.cache_idle < tokens:          # _room() < tokens
            return False
        if self.cache_idle and free < tokens:
            self._evict_until(tokens)
        self.kv_used += tokens
        return True

    def _evict_until(self, tokens: int) -> None:
        if not self.cache_idle or self.cfg.kv_tokens - self.kv_used >= tokens:
            return
        for group in list(self.cache):
            if self.cfg.kv_tokens - self.kv_used >= tokens:
                return
            _, size, users = self.cache[group]
            if users == 0:
                del self.cache[group]
                self.kv_used -= size
                self.cache_idle -= size

    def _admit(self) -> None:
        cfg = self.cfg
        while self.waiting and len(self.prefilling) + len(self.decoding) < cfg.max_batch:
            seq = self.waiting[0]
            entry = None
            if seq.swapped:
                need = seq.reserved
            else:
                if cfg.prefix_caching and seq.done == 0 and seq.group >= 0:
                    entry = self.cache.get(seq.group)
                hit = min(entry[0], seq.prefix_len, seq.target - 1) if entry else 0
                need = seq.target - seq.done - hit + BLOCK_TOKENS // 2
                if cfg.reserve_full:
                    need += seq.out_len - seq.generated
            pin = entry is not None and hit > 0
            if pin:   # pinned first, so that claiming memory cannot evict the very prefix this request reads
                self._use_entry(seq.group, entry)
            if not self._take(need):
                if pin:
                    self._release_entry(entry)
                break
            self.waiting.popleft()
            if seq.swapped:
                self.stall += seq.reserved * cfg.kv_bytes_per_token / max(cfg.host_bw, 1.0)
                seq.swapped = False
            else:
                seq.reserved = need
                if pin:
                    seq.holds_ref = True
                    seq.done = seq.hit = hit
            if math.isnan(seq.admit_t):
                seq.admit_t = self.clock
            if seq.done >= seq.target:
                self._start_decoding(seq)
            else:
                self.prefilling.append(seq)

    def _use_entry(self, group: int, entry: list[int]) -> None:
        if entry[2] == 0:
            self.cache_idle -= entry[1]
        entry[2] += 1
        self.cache.move_to_end(group)

    def _release_entry(self, entry: list[int]) -> None:
        entry[2] -= 1
        if entry[2] == 0:
            self.cache_idle += entry[1]

    # --- stepping --------------------------------------------------------------------------------

    def act(self, horizon: float = math.inf, defer_past: float = math.inf) -> float:
        """One scheduling decision at the current step boundary: a step with prompt work, or a run of decode
        steps up to the next finish, cut at the first boundary past `horizon`. A decode run that would end
        after `defer_past` is not taken; its end time is returned instead (the cluster takes it later, or
        cuts it when a request is routed here). Returns the clock after a step or run, or NaN when nothing
        could run."""
        if self._planned:       # taking (or cutting) a run decided at this same boundary: admission was done
            self._planned = False
            plan, self._plan = self._plan, None
            if plan is not None and horizon == math.inf:
                return self._take_run(len(self.decoding), *plan)
        elif self.waiting:
            self._admit()
        if self.prefilling:
            return self.clock if self._mixed_step() else math.nan
        if self.decoding:
            return self._decode_run(horizon, defer_past)
        return math.nan

    def _start_decoding(self, seq: Seq) -> None:
        self._order += 1
        seq.order = self._order
        seq.join_step, seq.gen_at_join = self.steps, seq.generated
        seq.ctx_at_join = max(seq.target, seq.prompt + seq.generated - 1) + 1
        seq.finish_step = self.steps + seq.out_len - seq.generated
        heappush(self.decoding, (seq.finish_step, seq.order, seq))
        self.decode_ctx += seq.ctx_at_join

    def _ensure_growth(self, tokens: int) -> bool:
        """On-demand KV: make room for `tokens` new decode tokens, preempting the newest sequences."""
        if self.cfg.reserve_full or self.cfg.kv_tokens - self.kv_used >= tokens:
            return True    # reserved up front, or free room without evicting anything
        while self._room() < tokens and self.decoding:
            self._preempt()
            tokens = len(self.decoding)
        self._evict_until(tokens)
        return bool(self.decoding) or tokens == 0

    def _mixed_step(self) -> bool:
        cfg = self.cfg
        b = len(self.decoding)
        if not cfg.reserve_full and cfg.kv_tokens - self.kv_used < b:
            self._ensure_growth(b)
            b = len(self.decoding)
        budget = max(cfg.token_budget - b, 0) // cfg.chunk_unit * cfg.chunk_unit
        p_tokens, p_pairs = 0, 0.0
        finished: list[Seq] = []
        for seq in self.prefilling:
            if budget <= 0:
                break
            chunk = min(seq.target - seq.done, budget)
            p_pairs += chunk * seq.done + chunk * (chunk + 1) / 2.0
            p_tokens += chunk
            seq.done += chunk
            budget -= chunk
            if seq.done >= seq.target:
                finished.append(seq)
        if b == 0 and p_tokens == 0:
            return False
        emit = b
        for s in finished:
            if s.generated == 0:
                emit += 1
        dt = self.timer.step(b, self.decode_ctx, p_tokens, p_pairs, emit) + self.stall
        self.stall = 0.0
        self.log_step(self.index, b, self.decode_ctx, p_tokens, p_pairs, emit, 1.0)
        self._spend(dt)
        if b:
            self._advance(1)
        if finished:
            del self.prefilling[:len(finished)]   # prompts finish in queue order
            for seq in finished:
                self._prompt_done(seq)
        return True

    def _spend(self, dt: float) -> None:
        self.clock += dt
        self.busy_time += dt
        self.kv_token_seconds += self.kv_used * dt
        if self.kv_used > self.kv_peak:
            self.kv_peak = self.kv_used

    def _prompt_done(self, seq: Seq) -> None:
        if seq.group >= 0:
            self._remember_prefix(seq)
        if seq.generated == 0:
            seq.generated = 1
            self.tokens_out += 1
            seq.first_t = self.clock
        if self.cfg.role == "prefill" or seq.generated >= seq.out_len:
            self._leave(seq)
        else:
            self._start_decoding(seq)

    def _remember_prefix(self, seq: Seq) -> None:
        """Keep this prompt's shareable prefix cached: its tokens move from the sequence to a cache entry."""
        if (not self.cfg.prefix_caching or seq.group < 0 or seq.prefix_len <= 0 or seq.holds_ref
                or seq.group in self.cache):
            return
        size = min(seq.prefix_len, seq.reserved)
        if size <= 0:
            return
        seq.reserved -= size
        self.cache[seq.group] = [size, size, 1]
        seq.holds_ref = True

    def _advance(self, k: int) -> None:
        decoding = self.decoding
        grown = len(decoding) * k
        steps = self.steps = self.steps + k
        self.decode_ctx += grown
        self.tokens_out += grown
        if not self.cfg.reserve_full:
            self.kv_used += grown
            if self.kv_used > self.kv_peak:
                self.kv_peak = self.kv_used
        while decoding and decoding[0][0] <= steps:
            seq = heappop(decoding)[2]
            self.decode_ctx -= seq.ctx_at_join + (steps - seq.join_step)
            seq.generated = seq.out_len
            self._leave(seq)

    def _held(self, seq: Seq) -> int:
        """KV tokens a sequence holds alone now (on-demand pools grow by one token per decode step)."""
        grown = 0 if self.cfg.reserve_full or seq.finish_step == 0 else seq.generated - seq.gen_at_join
        return seq.reserved + max(grown, 0)

    def _release(self, seq: Seq) -> None:
        """Give back a sequence's KV; its cached prefix stays, idle once unused, until evicted."""
        self.kv_used -= self._held(seq)
        seq.reserved = 0
        if seq.holds_ref:
            seq.holds_ref = False
            entry = self.cache.get(seq.group)
            if entry is not None:
                self._release_entry(entry)

    def _leave(self, seq: Seq) -> None:
        if seq.cache_group >= 0 and self.cfg.prefix_caching and self.cfg.role != "prefill":
            self._publish_history(seq)
        self._release(seq)
        self.outstanding -= seq.prompt + seq.out_len
        self.on_leave(seq, self.clock)

    def _publish_history(self, seq: Seq) -> None:
        """A finished turn leaves its whole context cached for the session's next turn: its own KV becomes
        an idle cache entry (evictable) instead of being freed."""
        old = self.cache.get(seq.cache_group)
        if old is not None:
            if old[2]:
                return
            del self.cache[seq.cache_group]
            self.kv_used -= old[1]
            self.cache_idle -= old[1]
        held = self._held(seq)
        seq.reserved, seq.finish_step = 0, 0
        self.cache[seq.cache_group] = [seq.prompt + seq.generated, held, 0]
        self.cache_idle += held

    def _decode_run(self, horizon: float, defer_past: float) -> float:
        cfg, decoding = self.cfg, self.decoding
        b = len(decoding)
        if not cfg.reserve_full and cfg.kv_tokens - self.kv_used < b and not self._ensure_growth(b):
            return math.nan
        timer = self.timer
        b = len(decoding)                                    # preemption may have shrunk the batch
        if b == 0:             # ... to nothing: every sequence waits to be prefilled again, at this boundary
            return self.clock
        k = decoding[0][0] - self.steps                      # steps to the next finish
        if not cfg.reserve_full:
            room = (cfg.kv_tokens - self.kv_used + self.cache_idle) // b     # _room() // b
            if room < k:
                k = room
        if k > cfg.max_run:
            k = cfg.max_run
        if k < 1:
            k = 1
        stall = self.stall
        if timer.has_window:
            total = np.cumsum(timer.decode_run(b, self.decode_ctx, k))
            if horizon < math.inf:
                k = min(k, int(np.searchsorted(total, horizon - self.clock - stall)) + 1)
            dt = float(total[k - 1]) + stall
        else:
            slope = timer.ctx_slope * b
            a = timer.decode_fixed(b) + timer.ctx_slope * self.decode_ctx
            if horizon < math.inf:
                k = min(k, _steps_to_reach(a, slope, horizon - self.clock - stall))
            dt = k * a + slope * k * (k - 1) / 2.0 + stall
        if self.clock + dt > defer_past:
            self._planned = True
            self._plan = (k, dt) if horizon == math.inf else None
            return self.clock + dt
        return self._take_run(b, k, dt)

    def _take_run(self, b: int, k: int, dt: float) -> float:
        self.stall = 0.0
        self.log_step(self.index, b, self.decode_ctx + b * (k - 1) / 2.0, 0.0, 0.0, b, float(k))
        self._spend(dt)
        if not self.cfg.reserve_full and self.cache_idle:
            self._evict_until(b * k)
        self._advance(k)
        return self.clock

    def _preempt(self) -> None:
        """vLLM: the most recently started sequence gives its KV back (recomputed or swapped in later)."""
        victim = max(self.decoding, key=lambda e: e[1])
        self.decoding.remove(victim)
        heapify(self.decoding)
        seq = victim[2]
        ran = self.steps - seq.join_step
        self.decode_ctx -= seq.ctx_at_join + ran
        seq.generated = seq.gen_at_join + ran
        seq.preemptions += 1
        if self.cfg.preemption == "swap":
            held = self._held(seq)
            self.kv_used -= held
            seq.reserved = held
            seq.swapped = True
            seq.finish_step = 0
            self.stall += held * self.cfg.kv_bytes_per_token / max(self.cfg.host_bw, 1.0)
        else:
            self._release(seq)
            seq.finish_step = 0
            seq.target, seq.done = seq.prompt + seq.generated, 0
        self.waiting.appendleft(seq)


def _steps_to_reach(a: float, slope: float, span: float) -> int:
    """Fewest steps k with k*a + slope*k(k-1)/2 >= span (at least 1): the run's last step ends past `span`."""
    if span <= a:
        return 1
    if slope <= 0:
        return max(1, math.ceil(span / a))
    # slope/2 k^2 + (a - slope/2) k - span = 0
    h = slope / 2.0
    b = a - h
    k = (-b + math.sqrt(b * b + 4 * h * span)) / (2 * h)
    return max(1, math.ceil(k - 1e-9))
