"""`StepTimer`: the step-cost model made cheap enough to call once per simulated engine step.

A serving simulation costs hundreds of thousands of steps one at a time (each step's duration decides
what the next one holds), so it cannot afford a NumPy call per step. The step cost is a sum of per-operator
soft rooflines, and each operator depends on one small set of step variables:

- weight GEMMs, norms, collectives: tokens in the step T (decode sequences + prefill tokens);
- the LM head: sequences emitting a token L;
- decode attention: its layer group's attended context (linear in it, so one coefficient);
- prefill attention: prompt tokens and causal pairs (a soft roofline of two linear terms).

So the timer tabulates T and L once with the real `time_ops`, takes the attention coefficients from the
real `op_times`, and sums them per step in plain Python. Tests hold it equal to `step_cost`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.deployment import Deployment
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.ops import ATTN_DECODE, ATTN_PREFILL, build_ops
from tokenfab.perf.params import EffParams
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.timing import engine_scale, op_times, time_ops


@dataclass(frozen=True)
class _PrefillAttn:
    """One layer group's prefill attention: t = scale * softroof(k_pairs*pairs, k_tok*tok + k_span*pairs/tok)."""

    window: float            # 0 = full attention
    k_pairs: float
    k_tok: float
    k_span: float


class StepTimer:
    """Exact, scalar-speed step time of one replica for any step shape (seconds)."""

    def __init__(self, model: ModelSpec, chip: Chip, dep: Deployment, params: EffParams, max_tokens: int) -> None:
        self._model, self._chip, self._dep, self._params = model, chip, dep, params
        self._per_seq = 1 + dep.mtp    # tokens a decode sequence puts through the model (its drafts included)
        self.roof_q = params.roof_q
        self.base = float(self._time(StepShapes.build())[0])
        self._tokens: list[float] = []
        self._logits: list[float] = []
        self._decode_fixed: list[float] = []   # base + tokens + logits time of a pure decode batch, by sequences
        self._extend(max(int(max_tokens) * self._per_seq, 1))
        # attention coefficients per layer group, read off the operator table at unit shapes
        factor = engine_scale(dep.engine, params) * dep.pp
        probe = StepShapes.build(decode_seqs=[1e9, 0.0, 0.0], decode_ctx=[1.0, 0.0, 0.0],
                                 prefill_tokens=[0.0, 1.0, 1.0], prefill_pairs=[0.0, 0.0, 1.0], logits=0.0)
        table = build_ops(model, chip, dep, probe)
        tc, tm = op_times(table, chip, params, dep.engine)
        windows = [float(g.window or 0) for g in model.layer_groups]
        dec_cols = np.flatnonzero(table.kind == ATTN_DECODE)
        pre_cols = np.flatnonzero(table.kind == ATTN_PREFILL)
        q = params.roof_q
        self.decode_attn = [(w, factor * float(_softroof(tc[0, c], tm[0, c], q)))
                            for w, c in zip(windows, dec_cols, strict=True)]
        self.prefill_attn = [_PrefillAttn(w, factor * float(tc[2, c]), factor * float(tm[1, c]),
                                          factor * float(tm[2, c] - tm[1, c]))
                             for w, c in zip(windows, pre_cols, strict=True)]
        self.has_window = any(w for w in windows)
        self.ctx_slope = sum(k for w, k in self.decode_attn if not w)   # s per attended token, full-attention layers

    def _time(self, shapes: StepShapes) -> np.ndarray:
        return time_ops(build_ops(self._model, self._chip, self._dep, shapes), self._chip, self._params,
                        self._dep.engine).time

    def _extend(self, n: int) -> None:
        """Tabulate the token- and logit-dependent time for 0..n (exact at every integer).

        Tokens are the rows through the model's layers (a decode sequence counts 1 + its drafts); logits
        are the sequences that emit, whose LM-head rows and draft passes follow from them."""
        start = len(self._tokens)
        if n < start:
            return
        counts = np.arange(start, n + 1, dtype=float)
        tokens = self._time(StepShapes.build(decode_seqs=counts / self._per_seq, logits=0.0)) - self.base
        logits = self._time(StepShapes.build(logits=counts)) - self.base
        self._tokens += tokens.tolist()
        self._logits += logits.tolist()
        # a batch of s sequences puts s * (1 + drafts) rows through the layers
        seqs = range(len(self._decode_fixed), (len(self._tokens) - 1) // self._per_seq + 1)
        self._decode_fixed += [self.base + self._tokens[s * self._per_seq] + self._logits[s] for s in seqs]

    def tokens_time(self, tokens: int) -> float:
        if tokens >= len(self._tokens):
            self._extend(max(tokens, 2 * len(self._tokens)))
        return self._tokens[tokens]

    def logits_time(self, logits: int) -> float:
        if logits >= len(self._logits):
            self._extend(max(logits, 2 * len(self._logits)))
        return self._logits[logits]

    def decode_fixed(self, seqs: int) -> float:
        """The part of a pure decode step of `seqs` sequences that does not depend on their context."""
        try:
            return self._decode_fixed[seqs]
        except IndexError:
            self._extend(max(seqs * self._per_seq, 2 * len(self._tokens)))
            return self._decode_fixed[seqs]

    def decode_attn_time(self, seqs: float, ctx: float) -> float:
        """Decode attention of `seqs` sequences attending to `ctx` tokens in all (windows cap each sequence)."""
        if not self.has_window:
            return self.ctx_slope * ctx
        return sum(k * (min(ctx, seqs * w) if w else ctx) for w, k in self.decode_attn)

    def prefill_attn_time(self, tokens: float, pairs: float) -> float:
        if tokens <= 0:
            return 0.0
        total = 0.0
        for g in self.prefill_attn:
            p = min(pairs, tokens * g.window) if g.window else pairs
            total += _softroof(g.k_pairs * p, g.k_tok * tokens + g.k_span * p / tokens, self.roof_q)
        return total

    def step(self, decode_seqs: int, decode_ctx: float, prefill_tokens: int = 0, prefill_pairs: float = 0.0,
             logits: int | None = None) -> float:
        """Time of one step (the same number `step_cost` gives for this shape)."""
        emit = decode_seqs if logits is None else logits
        # tokens_time(tokens) + logits_time(emit) and, without windows, decode_attn_time, in line (once a step)
        tokens = decode_seqs * self._per_seq + prefill_tokens
        if tokens >= len(self._tokens):
            self._extend(max(tokens, 2 * len(self._tokens)))
        token_time = self._tokens[tokens]
        if emit >= len(self._logits):
            self._extend(max(emit, 2 * len(self._logits)))
        t = self.base + token_time + self._logits[emit]
        t += self.ctx_slope * decode_ctx if not self.has_window else self.decode_attn_time(decode_seqs, decode_ctx)
        if prefill_tokens:
            t += self.prefill_attn_time(prefill_tokens, prefill_pairs)
        return t

    def decode_run(self, seqs: int, ctx: float, steps: int) -> np.ndarray:
        """Times of `steps` consecutive pure-decode steps of a fixed batch (context grows by `seqs` a step)."""
        j = np.arange(steps, dtype=float)
        fixed = self.decode_fixed(seqs)
        c = ctx + seqs * j
        attn = self.ctx_slope * c
        for w, k in self.decode_attn:
            if w:
                attn = attn + k * np.minimum(c, seqs * w)
        return fixed + attn


def _softroof(tc: float, tm: float, q: float) -> float:
    """Scalar twin of `timing.soft_roofline`."""
    big = max(tc, tm)
    if big <= 0.0:
        return 0.0
    return big * ((tc / big) ** q + (tm / big) ** q) ** (1.0 / q)


__all__ = ["StepTimer"]
