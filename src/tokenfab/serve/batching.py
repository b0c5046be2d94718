"""Engine-like batching for the offline and static scenarios, producing `StepShapes` to be costed.

Offline (all requests available at once) needs no clock to decide which work goes into which step:
the step composition follows from the batch limit, the KV capacity and the token budget alone. So
the schedule is built first and every step is costed in one vectorised call afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.perf.shapes import StepShapes


@dataclass(frozen=True)
class SteadyState:
    """In-flight batching at saturation: one representative step and how many requests it retires."""

    step: StepShapes
    requests_per_step: float
    concurrency: float


def max_concurrency(kv_tokens: float, isl: float, osl: float, batch_limit: int, reserve_full: bool) -> int:
    """Sequences that fit at once: engines that reserve whole sequences (TRT-LLM's no-evict policy)
    hold ISL+OSL tokens per slot; on-demand allocators (vLLM) hold ISL + OSL/2 on average."""
    per_seq = isl + (osl if reserve_full else osl / 2.0)
    return int(min(batch_limit, kv_tokens // max(per_seq, 1.0)))


def steady_state(isl: float, osl: float, concurrency: int, token_budget: int, accept: float = 1.0) -> SteadyState:
    """Fluid steady state of chunked-prefill in-flight batching with `concurrency` slots.

    Each request spends max(1, ISL/budget) steps in prefill and (OSL-1)/accept steps decoding (a step
    emits `accept` tokens under speculative decoding). Requests retire at rate r per step, limited by
    slots (r * steps per request <= concurrency) and by the token budget (r * (ISL + decode steps) <= budget).
    """
    decode_steps = max(osl - 1.0, 0.0) / accept
    prefill_steps = max(1.0, isl / token_budget)
    r = min(concurrency / (decode_steps + prefill_steps), token_budget / (isl + decode_steps))
    decoding = r * decode_steps
    step = StepShapes.build(
        decode_seqs=decoding,
        decode_ctx=decoding * (isl + osl / 2.0),
        prefill_tokens=r * isl,
        prefill_pairs=r * isl * (isl + 1) / 2.0,
        logits=decoding + r,
    )
    return SteadyState(step, r, decoding + r * prefill_steps)


@dataclass(frozen=True)
class Schedule:
    """A finite offline run: the steps in order and, per request, the steps of its first and last token."""

    steps: StepShapes
    first_token_step: np.ndarray
    last_token_step: np.ndarray


def schedule_offline(n_requests: int, isl: int, osl: int, concurrency: int, token_budget: int) -> Schedule:
    """Release `n_requests` identical requests at once and batch them FCFS the way TRT-LLM/vLLM do:
    decode tokens first, then prompt chunks up to the token budget, admitting while slots are free."""
    decode_seqs, decode_ctx, prefill_tokens, prefill_pairs, logits = [], [], [], [], []
    first = np.zeros(n_requests, dtype=np.int64)
    last = np.zeros(n_requests, dtype=np.int64)
    admitted = 0
    prefill_done = np.zeros(0)          # prompt tokens done for requests still prefilling (FIFO)
    prefill_ids: list[int] = []
    decoding_ctx = np.zeros(0)          # context length of each decoding request
    decoding_left = np.zeros(0)         # tokens still to generate
    decoding_ids = np.zeros(0, dtype=np.int64)
    step = 0
    while admitted < n_requests or prefill_ids or decoding_ids.size:
        while admitted < n_requests and len(prefill_ids) + decoding_ids.size < concurrency:
            prefill_ids.append(admitted)
            prefill_done = np.append(prefill_done, 0.0)
            admitted += 1
        d = decoding_ids.size
        budget = max(token_budget - d, 0)
        p_tokens = 0.0
        p_pairs = 0.0
        finished_prefill = []
        for i in range(len(prefill_ids)):
            if budget <= 0:
                break
            chunk = min(isl - prefill_done[i], budget)
            start = prefill_done[i]
            p_pairs += chunk * start + chunk * (chunk + 1) / 2.0
            p_tokens += chunk
            prefill_done[i] += chunk
            budget -= chunk
            if prefill_done[i] >= isl:
                finished_prefill.append(i)
        decode_seqs.append(d)
        decode_ctx.append(decoding_ctx.sum())
        prefill_tokens.append(p_tokens)
        prefill_pairs.append(p_pairs)
        logits.append(d + len(finished_prefill))
        # decode progress
        if d:
            decoding_ctx = decoding_ctx + 1
            decoding_left = decoding_left - 1
            done = decoding_left <= 0
            last[decoding_ids[done]] = step
            decoding_ids, decoding_ctx, decoding_left = decoding_ids[~done], decoding_ctx[~done], decoding_left[~done]
        # requests whose prompt finished emit their first token now and start decoding
        new_ids = [prefill_ids[i] for i in finished_prefill]
        for rid in new_ids:
            first[rid] = step
            if osl <= 1:
                last[rid] = step
        if osl > 1 and new_ids:
            decoding_ids = np.concatenate([decoding_ids, np.array(new_ids, dtype=np.int64)])
            decoding_ctx = np.concatenate([decoding_ctx, np.full(len(new_ids), float(isl))])
            decoding_left = np.concatenate([decoding_left, np.full(len(new_ids), float(osl - 1))])
        keep = [i for i in range(len(prefill_ids)) if i not in set(finished_prefill)]
        prefill_ids = [prefill_ids[i] for i in keep]
        prefill_done = prefill_done[keep]
        step += 1
    steps = StepShapes.build(np.array(decode_seqs), np.array(decode_ctx), np.array(prefill_tokens),
                             np.array(prefill_pairs), np.array(logits))
    return Schedule(steps, first, last)


def static_batch(batch: int, isl: int, osl: int, samples: int = 24,
                 accept: float = 1.0) -> tuple[StepShapes, np.ndarray]:
    """Static batching: one prefill of the whole batch, then (OSL-1)/accept decode steps at growing context
    (a step emits `accept` tokens per sequence under speculative decoding).

    Decode steps are costed at `samples` context points and weighted to stand for all of them, so the
    cost of a 2048-token generation is ~25 step evaluations instead of 2048.
    """
    n_decode = max(osl - 1, 0) / accept
    prefill = StepShapes.prefill(batch, isl)
    if n_decode == 0:
        return prefill, np.ones(1)
    k = max(min(samples, int(np.ceil(n_decode))), 1)
    edges = np.linspace(0, n_decode, k + 1)
    mids = (edges[:-1] + edges[1:]) / 2.0
    weights = np.diff(edges)
    decode = StepShapes.decode(np.full(k, float(batch)), isl + mids * accept + 0.5)
    steps = StepShapes.build(
        np.concatenate([prefill.decode_seqs, decode.decode_seqs]),
        np.concatenate([prefill.decode_ctx, decode.decode_ctx]),
        np.concatenate([prefill.prefill_tokens, decode.prefill_tokens]),
        np.concatenate([prefill.prefill_pairs, decode.prefill_pairs]),
        np.concatenate([prefill.logits, decode.logits]),
    )
    return steps, np.concatenate([[1.0], weights])
