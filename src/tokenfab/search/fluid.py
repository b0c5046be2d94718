"""Tier 1: capacity of one replica under every class's SLO from the step-cost model and fluid queueing.

For one layout (chip, model, TP, PP, precisions) the step time is computed with the real `time_ops` on
a grid of decode batches B, all at once. In steady state B decoding sequences retire r = B/(OSL-1)
requests per step, so each step also holds r*ISL prompt tokens. From there, per batch limit, chunk
size and P/D choice (broadcast arrays, no Python loop per point):

- TPOT p-th percentile: a request's mean step time over its decode steps; steps carrying a prompt chunk
  are slower, and a short request sees a binomial share of them (normal quantile z over OSL_p10 steps);
- TTFT p-th percentile: prompt chunks queue for the step budget left after decoding (M/M/1 waiting-time
  tail) plus the class's p-th percentile prompt split into chunks;
- KV cache and batch limits bound B; the best feasible B gives the replica's output tokens/s.

P/D disaggregation prices a decode replica plus the prefill replicas it needs (utilisation chosen so
TTFT holds, KV moved over the scale-out network). The simulator tier checks all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from tokenfab.deployment import Deployment, kv_capacity_tokens
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.ops import build_ops
from tokenfab.perf.params import EffParams
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.timing import time_ops
from tokenfab.search.problem import ClassStats

B_GRID = np.unique(np.round(np.geomspace(1, 2048, 44))).astype(float)
RHO_MAX = 0.95
PD_RHO = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
INFEASIBLE = ("ok", "kv_cache", "tpot_slo", "ttft_slo", "chunk_budget", "batch_limit")


@dataclass(frozen=True)
class Mix:
    """One model's share of the traffic: request-weighted means and the per-class tails and SLOs."""

    isl: float
    isl_resid: float             # E[ISL^2] / (2 E[ISL]): mean residual prompt seen by an arrival
    osl: float
    osl_short: float             # OSL_p10: the shortest requests set the TPOT tail
    isl_tail: np.ndarray         # (C,) per class prompt length at its SLO percentile
    ttft: np.ndarray             # (C,) TTFT bound, s
    tpot: float                  # tightest TPOT bound of the classes sharing the replica, s
    z: float                     # normal quantile of the strictest percentile
    tail: float                  # 1 - that percentile (0.01 for p99)

    @classmethod
    def of(cls, classes: list[ClassStats]) -> Mix:
        w = np.array([c.share for c in classes])
        w = w / w.sum()
        isl = float(np.dot(w, [c.isl_mean for c in classes]))
        return cls(isl=isl, isl_resid=float(np.dot(w, [c.isl_sq_mean for c in classes])) / (2.0 * isl),
                   osl=float(max(np.dot(w, [c.osl_mean for c in classes]), 2.0)),
                   osl_short=float(min(c.osl_p10 for c in classes)),
                   isl_tail=np.array([c.isl_p99 for c in classes]), ttft=np.array([c.ttft_s for c in classes]),
                   tpot=float(min(c.tpot_s for c in classes)),
                   z=float(norm.ppf(max(c.percentile for c in classes) / 100.0)),
                   tail=1.0 - max(c.percentile for c in classes) / 100.0)


@dataclass(frozen=True)
class LayoutResult:
    """Best operating point per (batch limit, chunk, pd) of one layout; arrays shaped (nB, nT, 2)."""

    tokens_per_s: np.ndarray     # output tokens/s per replica unit (decode replica + its prefill share)
    devices: np.ndarray          # chips per replica unit (fractional prefill share included)
    tpot: np.ndarray             # mean TPOT, s
    ttft: np.ndarray             # worst class's TTFT tail, s
    power: np.ndarray            # W per replica unit at that load
    batch: np.ndarray            # decode batch B
    pd_ratio: np.ndarray         # prefill replicas per decode replica (0 = unified)
    reason: np.ndarray           # index into INFEASIBLE (0 = feasible)


def _times(model: ModelSpec, chip: Chip, dep: Deployment, params: EffParams, shapes: StepShapes):
    cost = time_ops(build_ops(model, chip, dep, shapes), chip, params, dep.engine)
    return cost.time, cost.energy


def screen_layout(model: ModelSpec, chip: Chip, dep: Deployment, params: EffParams, mix: Mix,
                  batch_limits: np.ndarray, chunks: np.ndarray, kv_tokens: float | None = None,
                  kv_transfer_s: float = 0.0) -> LayoutResult:
    """Capacity under SLO of one layout for every batch limit x chunk size x (unified, P/D)."""
    kv = kv_capacity_tokens(model, chip, dep) if kv_tokens is None else kv_tokens
    B = B_GRID
    G, nT = B.size, chunks.size
    isl, osl = mix.isl, mix.osl
    r = B / (osl - 1.0)                       # requests entering (and leaving) per step
    p = r * isl                               # prompt tokens per step
    span = (isl + 1.0) / 2.0                  # mean causal span of a prompt token
    ctx = B * (isl + osl / 2.0)
    Tm = np.repeat(chunks[None, :], G, 0)     # (G, nT)
    Bm = np.repeat(B[:, None], nT, 1)
    chunk_tok = np.maximum(Tm - Bm, 0.0)      # prompt tokens a step can carry next to B decodes
    shapes = StepShapes.build(
        decode_seqs=np.concatenate([B, B, Bm.ravel(), np.zeros(nT)]),
        decode_ctx=np.concatenate([ctx, ctx, np.repeat(ctx[:, None], nT, 1).ravel(), np.zeros(nT)]),
        prefill_tokens=np.concatenate([np.zeros(G), p, chunk_tok.ravel(), chunks]),
        prefill_pairs=np.concatenate([np.zeros(G), p * span, chunk_tok.ravel() * span, chunks * span]),
        logits=np.concatenate([B, B + r, Bm.ravel() + np.minimum(chunk_tok.ravel() / isl, 1.0), chunks / isl]),
    )
    t, e = _times(model, chip, dep, params, shapes)
    t0, e0 = t[:G], e[:G]                                  # pure decode
    tmean, emean = t[G:2 * G], e[G:2 * G]                  # decode + the mean prompt load
    tc = t[2 * G:2 * G + G * nT].reshape(G, nT)            # decode + a full chunk
    tpf, epf = t[-nT:], e[-nT:]                            # a prefill replica's full chunk

    reserve = dep.preset["reserve_full_sequence"]
    kv_ok = B * (isl + (osl if reserve else osl / 2.0)) <= kv        # (G,)
    nB = batch_limits.size
    # slots: decoding plus prefilling sequences, with square-root headroom for arrival fluctuations
    # (a full batch makes arrivals queue for a slot, and TTFT explodes)
    occupancy = B * (1.0 + np.ceil(isl / np.max(chunks)) / (osl - 1.0))
    lim_ok = (occupancy + mix.z * np.sqrt(occupancy))[None, :] <= batch_limits[:, None]     # (nB, G)

    # ---- unified replicas (chunked prefill mixed with decode) -------------------------------------
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(chunk_tok > 0, p[:, None] / chunk_tok, np.inf)                       # (G, nT)
        n_short = max(mix.osl_short - 1.0, 1.0)
        share = np.clip(rho + mix.z * np.sqrt(np.clip(rho * (1 - rho), 0, None) / n_short), 0.0, 1.0)
        # the batch itself fluctuates (Poisson-like): the tail request decodes beside B + z*sqrt(B) others
        b_hi = B + mix.z * np.sqrt(B)
        t0_hi = np.interp(b_hi, B, t0)
        tpot_tail = t0_hi[:, None] + (tc - t0[:, None]) * share
        resid = mix.isl_resid / chunk_tok * tc
        wait = resid * np.maximum(np.log(rho / mix.tail), 0.0) / (1.0 - rho)
        s_tail = np.ceil(mix.isl_tail[None, None, :] / chunk_tok[:, :, None]) * tc[:, :, None]   # (G, nT, C)
        # an arrival first waits out the step in flight: a chunk step whenever chunks are common enough to
        # reach the tail (rho above 1 - percentile), else a decode step
        inflight = np.where(rho > mix.tail, tc, t0[:, None])
        ttft_c = (wait + inflight)[:, :, None] + s_tail
        ttft_ok = (ttft_c <= mix.ttft).all(axis=2)
        ttft_u = ttft_c.max(axis=2)
    budget_ok = rho < RHO_MAX
    tpot_ok = tpot_tail <= mix.tpot
    x_u = r * osl / tmean                                                                 # (G,)
    power_u = emean / tmean

    # ---- P/D: decode replicas plus the prefill replicas they need ---------------------------------
    mu = chunks / (tpf * isl)                                       # prompts/s of one prefill replica
    resid_pf = mix.isl_resid / chunks * tpf
    with np.errstate(divide="ignore", invalid="ignore"):
        w_pf = resid_pf[:, None] * np.maximum(np.log(PD_RHO[None, :] / mix.tail), 0.0) / (1.0 - PD_RHO[None, :])
    tail_pf = (np.ceil(mix.isl_tail[None, :] / chunks[:, None]) + 1.0) * tpf[:, None] + kv_transfer_s  # (nT, C)
    ttft_pd_all = w_pf[:, :, None] + tail_pf[:, None, :]                                      # (nT, R, C)
    ok_r = (ttft_pd_all <= mix.ttft).all(axis=2)                                              # (nT, R)
    first = np.where(ok_r.any(axis=1), ok_r.argmax(axis=1), -1)                               # best (largest) rho
    rho_pd = np.where(first >= 0, PD_RHO[np.maximum(first, 0)], np.nan)
    ttft_pd = np.where(first >= 0, ttft_pd_all[np.arange(nT), np.maximum(first, 0)].max(axis=1), np.inf)
    rate_d = B / ((osl - 1.0) * t0)                                 # requests/s through one decode replica
    ratio = rate_d[:, None] / (mu[None, :] * rho_pd[None, :])       # (G, nT)
    x_pd = rate_d * osl
    power_pd = e0[:, None] / t0[:, None] + ratio * epf[None, :] / tpf[None, :] * rho_pd[None, :]
    tpot_pd_ok = np.interp(B + mix.z * np.sqrt(B), B, t0) <= mix.tpot

    # ---- pick the best B for every (batch limit, chunk, mode) -------------------------------------
    devices = float(dep.devices)
    feas_u = lim_ok[:, :, None] & kv_ok[None, :, None] & (budget_ok & tpot_ok & ttft_ok)[None]      # (nB, G, nT)
    feas_p = (lim_ok[:, :, None] & kv_ok[None, :, None] & tpot_pd_ok[None, :, None]
              & np.isfinite(ratio)[None])
    per_dev_u = np.broadcast_to((x_u / devices)[None, :, None], feas_u.shape)
    per_dev_p = np.broadcast_to((x_pd[:, None] / (devices * (1.0 + ratio)))[None], feas_p.shape)
    score = np.stack([np.where(feas_u, per_dev_u, -1.0), np.where(feas_p, per_dev_p, -1.0)], axis=-1)  # (nB,G,nT,2)
    best = score.argmax(axis=1)                                                                   # (nB, nT, 2)
    ok = np.take_along_axis(score, best[:, None], axis=1)[:, 0] > 0
    bi = best

    def pick(u: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Value at the chosen B for unified (u: (G,nT)) and P/D (d: (G,nT)) -> (nB, nT, 2)."""
        cols = np.arange(nT)[None, :]
        return np.stack([u[bi[..., 0], cols], d[bi[..., 1], cols]], axis=-1)

    full = (G, nT)
    tok = pick(np.broadcast_to(x_u[:, None], full), np.broadcast_to(x_pd[:, None], full))
    dev = pick(np.full(full, devices), devices * (1.0 + np.where(np.isfinite(ratio), ratio, 0.0)))
    tpot = pick(np.broadcast_to(tmean[:, None], full), np.broadcast_to(t0[:, None], full))
    ttft = pick(ttft_u, np.broadcast_to(ttft_pd[None, :], full))
    power = pick(np.broadcast_to(power_u[:, None], full), np.where(np.isfinite(power_pd), power_pd, 0.0))
    batch = pick(np.broadcast_to(B[:, None], full), np.broadcast_to(B[:, None], full))
    ratio_out = pick(np.zeros(full), np.where(np.isfinite(ratio), ratio, 0.0))

    # the binding constraint where nothing is feasible: first check that fails for every B
    reason = np.zeros((nB, nT, 2), dtype=np.int64)
    lim_kv = lim_ok & kv_ok[None, :]
    any_kv = lim_kv.any(axis=1)[:, None, None]
    any_budget = (lim_kv[:, :, None] & budget_ok[None]).any(axis=1)
    any_tpot = (lim_kv[:, :, None] & budget_ok[None] & tpot_ok[None]).any(axis=1)
    r_u = np.where(~any_budget, 4, np.where(~any_tpot, 2, 3))
    r_p = np.where((lim_kv[:, :, None] & tpot_pd_ok[None, :, None]).any(axis=1), 3, 2)
    r_p = np.broadcast_to(r_p, (nB, nT))
    reason[..., 0] = np.where(any_kv[..., 0], r_u, 1)
    reason[..., 1] = np.where(any_kv[..., 0], r_p, 1)
    reason = np.where(ok, 0, reason)
    nan = np.nan
    return LayoutResult(np.where(ok, tok, 0.0), dev, np.where(ok, tpot, nan), np.where(ok, ttft, nan),
                        np.where(ok, power, nan), np.where(ok, batch, 0.0), np.where(ok, ratio_out, 0.0), reason)
