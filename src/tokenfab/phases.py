"""Phase-isolated measurements: a decode pool held at a fixed batch, a prefill pool at saturation.

Large-MoE deployments are measured one phase at a time (SGLang's and DeepSeek's P/D blogs, Ant Group's
decode logs): the decode pool's tokens/s at a given batch with the prefill pool "unlimited", or the prefill
pool's input tokens/s with decode unlimited. These are steady states, not runs, so one step shape each
stands for them.
"""

from __future__ import annotations

from tokenfab.deployment import Deployment
from tokenfab.perf.shapes import StepShapes


def decode_step(batch: float, isl: float, osl: float) -> StepShapes:
    """One decode step of `batch` sequences at the phase's mean context (prompt + half the output)."""
    return StepShapes.decode(batch, isl + osl / 2.0)


def prefill_step(dep: Deployment, isl: float) -> StepShapes:
    """One saturated prefill step: every attention group fills its token budget (at least one whole
    prompt) with prompts of `isl` tokens; a token attends on average to (isl + 1) / 2 positions
    whether the prompt comes whole or in chunks."""
    per_group = max(float(dep.token_budget) / dep.attn_dp, isl)
    tokens = per_group * dep.attn_dp
    return StepShapes.build(prefill_tokens=tokens, prefill_pairs=tokens * (isl + 1.0) / 2.0, logits=tokens / isl)
