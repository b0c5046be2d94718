"""`StepShapes`: what one engine step processes, as arrays so every cost is vectorised over steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepShapes:
    """S engine steps. Each array has shape (S,); token counts are for one model replica.

    decode_seqs:    sequences generating one token this step
    decode_ctx:     sum of their context lengths (KV tokens each one attends to)
    prefill_tokens: prompt tokens processed this step (whole prompts or chunks)
    prefill_pairs:  sum over prefill tokens of the positions each attends to (causal)
    logits:         sequences that emit a token this step (LM head rows)
    """

    decode_seqs: np.ndarray
    decode_ctx: np.ndarray
    prefill_tokens: np.ndarray
    prefill_pairs: np.ndarray
    logits: np.ndarray

    @classmethod
    def build(cls, decode_seqs=0.0, decode_ctx=0.0, prefill_tokens=0.0, prefill_pairs=0.0,
              logits=None) -> StepShapes:
        arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (
            decode_seqs, decode_ctx, prefill_tokens, prefill_pairs,
            np.asarray(decode_seqs, dtype=float) if logits is None else logits)))
        return cls(*(np.atleast_1d(a).astype(float) for a in arrays))

    @classmethod
    def decode(cls, batch, context) -> StepShapes:
        """Pure decode steps: `batch` sequences each attending to `context` tokens."""
        batch = np.asarray(batch, dtype=float)
        return cls.build(decode_seqs=batch, decode_ctx=batch * np.asarray(context, dtype=float))

    @classmethod
    def prefill(cls, batch, prompt_len, prior=0.0) -> StepShapes:
        """Prefill of `batch` prompts of `prompt_len` new tokens after `prior` cached tokens."""
        batch = np.asarray(batch, dtype=float)
        n = np.asarray(prompt_len, dtype=float)
        prior = np.asarray(prior, dtype=float)
        pairs = batch * (n * prior + n * (n + 1) / 2)
        return cls.build(prefill_tokens=batch * n, prefill_pairs=pairs, logits=batch)

    @property
    def tokens(self) -> np.ndarray:
        return self.decode_seqs + self.prefill_tokens

    def __len__(self) -> int:
        return self.decode_seqs.shape[0]
