"""What a measured query says about its deployment outside the structured fields.

Published rows describe the serving setup in their engine tag and note: a prefill/decode-disaggregated
layout (`dynamo-sglang-0.5.8-pd-1xTP4+2xTP4`), a phase-isolated test ("decode-only test", "prefill-only"),
speculative decoding ("MTP ... steps=2", "num_nextn_predict_layers 3", "acceptance length 2.18"). Reading
them here keeps `predict` answering the configuration that was measured rather than a default one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

_PD = re.compile(r"pd-(\d+)x(?:d?ep|tp|dep)?(\d+)\+(\d+)x(?:d?ep|tp|dep)?(\d+)", re.IGNORECASE)
_PD_NOTE = re.compile(r"(\d+) prefill \+ (\d+) decode (?:instances|nodes)", re.IGNORECASE)
_PREFILL_ONLY = re.compile(r"prefill[- ]only|prefill throughput|prefill instance =|during prefilling|"
                           r"prefill of [\d,]+-token prompts", re.IGNORECASE)
_DECODE_ONLY = re.compile(r"decode[- ]only|decode instance:|decoding nodes|decode nodes only|(?:^|;\s*)decode of|"
                          r"during decoding|decode throughput", re.IGNORECASE)
_NO_MTP = re.compile(r"no MTP|MTP off|without MTP", re.IGNORECASE)
_MTP_PATTERNS = (
    (re.compile(r"(?:MTP|NEXTN)[^;]*?steps=(\d+)", re.IGNORECASE), 0),
    (re.compile(r"num_nextn_predict_layers\s*(\d+)", re.IGNORECASE), 0),
    (re.compile(r"MTP on: (\d+)-token window", re.IGNORECASE), -1),   # SGLang's draft window counts the root
    (re.compile(r"\bMTP ?(\d)\b"), 0),
)
_ATTN_DP = re.compile(r"attention DP ?(\d+)", re.IGNORECASE)
_OVERLAP = re.compile(r"(?<!no )(?:two|dual|single)[- ](?:micro-)?batch overlap", re.IGNORECASE)
_NO_OVERLAP = re.compile(r"no (?:dual|two)[- ]batch overlap", re.IGNORECASE)
_MICRO_BATCHES = re.compile(r"(?<!no )(?:two|dual)[- ](?:micro-)?batch overlap", re.IGNORECASE)
_EAGER = re.compile(r"enforce[-_ ]eager", re.IGNORECASE)
_PYTORCH_BACKEND = re.compile(r"pytorch backend", re.IGNORECASE)
_NO_HOST_OVERLAP = re.compile(r"no overlap schedul|overlap schedul\w* (?:off|disabled)|"
                              r"disable[-_ ]overlap[-_ ]schedule", re.IGNORECASE)
_HOST_OVERLAP = re.compile(r"overlap schedul\w* (?:on|enabled)", re.IGNORECASE)
_FP8_ATTENTION = re.compile(r"FP8 (?:MLA|attention)|FP8 FMHA|fp8 context FMHA", re.IGNORECASE)
_TOKEN_BUDGET = re.compile(r"max_num_(?:batched_)?tokens[ =:]*(\d[\d,]*)", re.IGNORECASE)
_CLIENT_CAP = re.compile(r"max(?:imum)?[-_ ]concurrency (\d[\d,]*)", re.IGNORECASE)
_ACCEPT = re.compile(r"accept(?:ance)? length (?:of )?(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class PDLayout:
    """Prefill and decode pools: replicas and chips per replica of each."""

    prefill_replicas: int
    prefill_width: int
    decode_replicas: int
    decode_width: int


@dataclass(frozen=True)
class Hints:
    phase: str | None = None        # "prefill" or "decode" when only that phase was measured
    mtp: int | None = None          # draft tokens per step (None = not stated)
    accept: float | None = None     # published acceptance length
    pd: PDLayout | None = None
    attn_dp: int | None = None      # attention data-parallel size stated in the note ("attention DP8")
    overlap: bool = False           # the all-to-all overlapped with compute ("two-batch overlap")
    eager: bool = False             # kernels launched one by one from the host (vLLM --enforce-eager)
    pytorch_backend: bool = False   # TensorRT-LLM's PyTorch backend named in the note
    micro_batches: int = 1          # 2 for two-/dual-batch overlap, 1 for single-batch overlap
    fp8_attention: bool = False     # attention kernels run FP8 math on an FP8 cache (FlashMLA/FA3 FP8)
    host_overlap: bool | None = None  # the scheduler's host work overlapped with the GPU (None = not stated)
    client_cap: int | None = None   # the benchmark client's cap on requests in flight ("max concurrency N")
    max_num_tokens: int | None = None  # the engine's tokens per step as configured ("max_num_tokens 2560")


def pd_layout(engine: str) -> PDLayout | None:
    """The P/D layout an engine tag names (`...-pd-1xTP4+2xTP4`), else None."""
    m = _PD.search(engine or "")
    if not m:
        return None
    p, pw, d, dw = (int(x) for x in m.groups())
    return PDLayout(p, pw, d, dw)


@cache
def read_hints(engine: str, note: str | None) -> Hints:
    """Everything the tag and note say (cached: `predict` asks once per planning step of a query)."""
    text = f"{engine or ''}; {note or ''}"
    first = (note or "").split(";")[0] + "; " + (engine or "")
    phase = None
    if _PREFILL_ONLY.search(text):
        phase = "prefill"
    elif _DECODE_ONLY.search(text):
        phase = "decode"
    mtp = None
    if _NO_MTP.search(first):
        mtp = 0
    else:
        for pattern, offset in _MTP_PATTERNS:
            m = pattern.search(text)
            if m:
                mtp = max(int(m.group(1)) + offset, 0)
                break
    acc = _ACCEPT.search(text)
    pd = pd_layout(engine)
    pools = _PD_NOTE.search(note or "")
    if pd is None and pools and phase is None:   # "2 prefill + 3 decode instances": widths as the query's replica
        pd = PDLayout(int(pools.group(1)), 0, int(pools.group(2)), 0)
    dp = _ATTN_DP.search(text)
    cap = _CLIENT_CAP.search(text)
    budget = _TOKEN_BUDGET.search(text)
    return Hints(phase=phase, mtp=mtp, accept=float(acc.group(1)) if acc else None, pd=pd,
                 attn_dp=int(dp.group(1)) if dp else None,
                 overlap=bool(_OVERLAP.search(text)) and not _NO_OVERLAP.search(text),
                 eager=bool(_EAGER.search(text)), pytorch_backend=bool(_PYTORCH_BACKEND.search(text)),
                 micro_batches=2 if _MICRO_BATCHES.search(text) else 1,
                 fp8_attention=bool(_FP8_ATTENTION.search(text)),
                 host_overlap=False if _NO_HOST_OVERLAP.search(text) else True if _HOST_OVERLAP.search(text) else None,
                 client_cap=_count(cap), max_num_tokens=_count(budget) or None)


def _count(m: re.Match[str] | None) -> int | None:
    """The number a hint states, thousands separators allowed ("10,800")."""
    return int(m.group(1).replace(",", "")) if m else None
