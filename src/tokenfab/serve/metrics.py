"""Streaming serving metrics: latency percentiles, goodput, batch and KV statistics in bounded memory.

A million-request trace must not keep a million latencies. Each latency goes into a log-spaced
histogram (0.25% relative bin width, 1 µs to ~3 h), so percentiles are exact to a quarter of a percent
whatever the run length; means are exact sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_LOG_BASE = math.log1p(0.005)       # bin width: values within a bin differ by < 0.5%, midpoint error < 0.25%
_MIN = 1e-6                         # seconds
_BINS = int(math.log(1e4 / _MIN) / _LOG_BASE) + 2


class LogHistogram:
    """Percentiles of a positive quantity, streaming, with bounded relative error."""

    def __init__(self) -> None:
        self.counts = np.zeros(_BINS, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if not values.size:
            return
        idx = np.clip((np.log(np.maximum(values, _MIN) / _MIN) / _LOG_BASE).astype(np.int64), 0, _BINS - 1)
        self.counts += np.bincount(idx, minlength=_BINS)
        self.n += values.size
        self.total += float(values.sum())
        self.max = max(self.max, float(values.max()))

    def merge(self, other: LogHistogram) -> None:
        """Fold another histogram of the same quantity into this one (bins are shared, so exactly)."""
        self.counts += other.counts
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def percentile(self, p: float) -> float:
        if not self.n:
            return math.nan
        rank = p / 100.0 * (self.n - 1)
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, rank + 1))
        centre = _MIN * math.exp((i + 0.5) * _LOG_BASE)
        return min(centre, self.max)

    def summary(self, scale: float = 1e3) -> dict[str, float]:
        """mean, p50, p90, p99 (milliseconds by default)."""
        return {"mean": self.mean * scale, "p50": self.percentile(50) * scale, "p90": self.percentile(90) * scale,
                "p99": self.percentile(99) * scale}


def request_latencies(rec: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TTFT, TPOT (NaN for one-token replies) and end-to-end seconds of finished-request records."""
    out = rec["output_len"]
    ttft = rec["first_token"] - rec["arrival"]
    tpot = np.where(out > 1, (rec["finish"] - rec["first_token"]) / np.maximum(out - 1, 1), np.nan)
    return ttft, tpot, rec["finish"] - rec["arrival"]


@dataclass
class ClassMetrics:
    """Streaming statistics of one request class."""

    ttft: LogHistogram = field(default_factory=LogHistogram)
    tpot: LogHistogram = field(default_factory=LogHistogram)
    e2e: LogHistogram = field(default_factory=LogHistogram)
    queue: LogHistogram = field(default_factory=LogHistogram)
    requests: int = 0
    output_tokens: int = 0
    input_tokens: int = 0
    good_requests: int = 0
    good_tokens: int = 0
    preemptions: int = 0
    cached_tokens: int = 0

    def add(self, rec: dict[str, np.ndarray], ttft_slo: float | None, tpot_slo: float | None) -> None:
        ttft, tpot, e2e = request_latencies(rec)
        out = rec["output_len"]
        self.ttft.add(ttft)
        self.tpot.add(tpot)
        self.e2e.add(e2e)
        self.queue.add(rec["admitted"] - rec["arrival"])
        self.requests += int(out.size)
        self.output_tokens += int(out.sum())
        self.input_tokens += int(rec["input_len"].sum())
        self.preemptions += int(rec["preemptions"].sum())
        self.cached_tokens += int(rec["cached"].sum())
        good = np.ones(out.size, dtype=bool)
        if ttft_slo is not None:
            good &= ttft <= ttft_slo
        if tpot_slo is not None:
            good &= ~(tpot > tpot_slo)
        self.good_requests += int(good.sum())
        self.good_tokens += int(out[good].sum())


class StepStats:
    """Step-weighted batch-size histogram and busy time, fed with the engine's step log."""

    def __init__(self, max_batch: int) -> None:
        self.batch_hist = np.zeros(max_batch + 2, dtype=float)
        self.steps = 0.0
        self.decode_tokens = 0.0
        self.prefill_tokens = 0.0

    def add(self, decode_seqs: np.ndarray, prefill_tokens: np.ndarray, weight: np.ndarray) -> None:
        b = np.clip(decode_seqs.astype(np.int64), 0, self.batch_hist.size - 1)
        self.batch_hist += np.bincount(b, weights=weight, minlength=self.batch_hist.size)
        self.steps += float(weight.sum())
        self.decode_tokens += float((decode_seqs * weight).sum())
        self.prefill_tokens += float(prefill_tokens.sum())

    def mean_batch(self) -> float:
        return self.decode_tokens / self.steps if self.steps else 0.0

    def histogram(self, edges: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)) -> dict[str, float]:
        """Share of steps by decode batch size, in power-of-two buckets."""
        out: dict[str, float] = {}
        total = max(self.steps, 1e-30)
        sizes = np.arange(self.batch_hist.size)
        bounds = list(edges) + [self.batch_hist.size]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            share = float(self.batch_hist[(sizes >= lo) & (sizes < hi)].sum()) / total
            if share:
                out[f"{lo}-{hi - 1}" if hi - 1 > lo else str(lo)] = share
        return out
