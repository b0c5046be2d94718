"""Speculative decoding (MTP, EAGLE): how many tokens a decode step emits, from published acceptance.

A step that verifies `d` draft tokens emits the accepted prefix plus the target model's own token, on
average the *acceptance length* (1 without speculation, at most d + 1). It is a property of the model, the
draft module and the text, not of the hardware, so it is taken from published measurements
(`catalog/data/spec_decode.csv`, each row with its source), never fitted to throughput.
"""

from __future__ import annotations

import re
import statistics

from tokenfab import catalog

# Models that share one draft module family: DeepSeek-R1 is DeepSeek-V3 post-trained, same MTP module.
_MODEL_FAMILY = {"deepseek-r1": "deepseek-v3", "kimi-k2": "deepseek-v3"}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _family(model: str) -> str:
    return _MODEL_FAMILY.get(model, model)


def _value(text: str) -> float | None:
    """A published acceptance length; a range '1.8-1.9' counts as its midpoint."""
    nums = [float(x) for x in _NUMBER.findall(text or "")]
    return sum(nums) / len(nums) if nums else None


def _drafts(row: dict[str, str]) -> int:
    """Draft tokens a row's step verifies besides the target's own token. SGLang's `num_draft_tokens`
    counts the root too (a chain of `speculative_num_steps` drafts verifies steps + 1 tokens), so its
    rows carry one more than the drafts."""
    d = int(row["draft_tokens"])
    return d - 1 if "sglang" in (row["acceptance_length_definition"] + row["method"]).lower() \
        or row["source_id"].startswith("LMSYS_") else d


def _mtp_rows(model: str) -> list[tuple[int, float]]:
    """(draft tokens, acceptance length) of the strict MTP rows for the model's family."""
    out = []
    for row in catalog.spec_decode():
        if _family(row["model"]) != _family(model) or "MTP" not in row["method"]:
            continue
        if "relaxed" in row["method"].lower() or "fine-tuned" in row["method"].lower():
            continue
        value = _value(row["acceptance_length"])
        if row["draft_tokens"].isdigit() and value:
            out.append((_drafts(row), value))
    return out


def default_acceptance(model: str, draft_tokens: int) -> float:
    """Acceptance length for `draft_tokens` MTP drafts on `model`: the median of the published strict-MTP
    rows of its family at that depth, else at the nearest published depth (capped at d + 1); without any
    published row for the family, the median of every family's rows at the nearest depth."""
    if draft_tokens <= 0:
        return 1.0
    rows = _mtp_rows(model)
    if not rows:
        rows = [r for m in {_family(x["model"]) for x in catalog.spec_decode()} for r in _mtp_rows(m)]
    if not rows:
        return 1.0
    nearest = min({d for d, _ in rows}, key=lambda d: (abs(d - draft_tokens), d))
    value = statistics.median(v for d, v in rows if d == nearest)
    return float(min(value, draft_tokens + 1.0))
