"""A small continuous-batching server on the random-weight Llama: real queueing to check the simulator by.

It schedules the way `serve/engine.py` models TensorRT-LLM's no-evict policy: at each step boundary, admit
arrived requests first come first served up to `max_batch` (each holds a KV slot for its whole prompt +
output), then run one step that decodes a token for every running sequence and fills the rest of
`token_budget` with prompt chunks in arrival order. A prompt whose last chunk ran emits its first token in
that step and decodes from the next one. All of a step's tokens go through each layer's GEMMs together;
decode attention reads each sequence's own cache, prompt chunks attend causally to their prefix and to
themselves. The step ends when the sampled tokens are back on the host, as a server streams them.

Every step is logged with its shape (the `StepShapes` fields) and wall time, every request with its
arrival, first token and finish, so the same arrivals can be simulated with a step model fitted on part
of the logged steps and the latencies compared. Decode attention gathers the running sequences' caches
into one block (a copy in proportion to batch x context, which the fitted KV-read efficiency absorbs).
On a GPU, steps that only decode replay a CUDA graph captured per batch size (`capture_decode`), as
serving engines do: eagerly, launching a thousand small kernels a step, the host set the pace, and
steps of identical shape took anywhere from 15 to 150 ms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokenfab.calibrate.model_bench import TorchLlama, as_graph


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int       # sequences in flight (slots)
    token_budget: int    # tokens per step: decode tokens + prompt chunk
    input_len: int       # every request's prompt
    output_len: int      # every request's generated tokens (the first one included)


@dataclass
class ServeLog:
    """What one run measured: per step (shape, seconds) and per request (arrival, first token, finish)."""

    output_len: int
    steps: list[tuple[int, float, int, float, int, float]] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)

    def latencies(self) -> dict[str, float]:
        """TTFT and TPOT mean and percentiles (ms), as the simulator reports them."""
        arrival, first, finish = (np.asarray(a) for a in (self.arrival, self.first, self.finish))
        out: dict[str, float] = {}
        for name, values in (("ttft", (first - arrival) * 1e3),
                             ("tpot", (finish - first) * 1e3 / max(self.output_len - 1, 1))):
            out[f"{name}_ms_mean"] = float(values.mean())
            for q in (50, 90, 99):
                out[f"{name}_ms_p{q}"] = float(np.percentile(values, q))
        return out


class _Seq:
    __slots__ = ("rid", "slot", "done", "generated", "token")

    def __init__(self, rid: int, slot: int) -> None:
        self.rid, self.slot, self.done, self.generated, self.token = rid, slot, 0, 0, 1


class MiniServer:
    """The server's state on one device: the model, a KV slot per sequence, the queues."""

    def __init__(self, model: TorchLlama, cfg: ServeConfig) -> None:
        if cfg.token_budget <= cfg.max_batch:
            raise ValueError("token_budget must exceed max_batch (decode tokens alone would fill every step)")
        self.model, self.cfg = model, cfg
        dev, s = model.dev, model.spec
        self.torch = dev.torch
        self.length = cfg.input_len + cfg.output_len
        shape = (cfg.max_batch, s.kv_heads, self.length, s.head_dim)
        self.caches = [(self.torch.zeros(shape, dtype=self.torch.bfloat16, device=dev.device),
                        self.torch.zeros(shape, dtype=self.torch.bfloat16, device=dev.device))
                       for _ in range(s.layers)]
        self.prompts = model.token_ids(1, cfg.input_len)[0]
        self._graphs: dict[int, tuple[Any, tuple[Any, Any, Any, Any]]] = {}

    # ----- decode steps as CUDA graphs -----
    def capture_decode(self) -> str:
        """Capture one decode step per batch size 1..max_batch (attention over whole slots, masked past each
        sequence's position, so every shape is static). Returns how steps will run: cudagraph or eager."""
        torch, dev = self.torch, self.model.dev
        mode = "eager"
        for b in range(1, self.cfg.max_batch + 1):
            ids = torch.ones(b, dtype=torch.long, device=dev.device)
            pos = torch.full((b,), self.cfg.input_len, dtype=torch.long, device=dev.device)
            slots = torch.arange(b, device=dev.device)
            out = torch.ones(b, dtype=torch.long, device=dev.device)
            replay, mode = as_graph(dev, lambda i=ids, p=pos, sl=slots, o=out: self._decode_static(i, p, sl, o))
            if mode != "cudagraph":
                self._graphs.clear()
                return mode
            self._graphs[b] = (replay, (ids, pos, slots, out))
        return mode

    def _decode_static(self, ids: Any, pos: Any, slots: Any, out: Any) -> None:
        torch, m, s = self.torch, self.model, self.model.spec
        b, group = ids.shape[0], s.heads // s.kv_heads
        cos, sin = m.cos[pos][:, None, :], m.sin[pos][:, None, :]
        keep = (torch.arange(self.length, device=ids.device)[None, :] <= pos[:, None])[:, None, None, :]
        x = m.embed[ids][None]
        for layer, (kc, vc) in zip(m.layers, self.caches, strict=True):
            def attend(q: Any, k: Any, v: Any, kc: Any = kc, vc: Any = vc) -> Any:
                kc[slots, :, pos] = k[0]
                vc[slots, :, pos] = v[0]
                qd = q[0].reshape(b, s.kv_heads, group, s.head_dim)
                o = torch.nn.functional.scaled_dot_product_attention(qd, kc[slots], vc[slots], attn_mask=keep)
                return o.reshape(1, b, s.heads * s.head_dim)
            x = m._layer(x, layer, cos, sin, attend)
        logits = torch.nn.functional.linear(m._norm(x[0], m.final_norm), m.lm_head)
        out.copy_(logits.argmax(-1).clamp_(min=1))

    def _decode_graph(self, decoding: list[_Seq]) -> list[int]:
        replay, (ids, pos, slots, out) = self._graphs[len(decoding)]
        dev = self.model.dev.device
        ids.copy_(self.torch.tensor([q.token for q in decoding], device=dev))
        pos.copy_(self.torch.tensor([self.cfg.input_len + q.generated - 1 for q in decoding], device=dev))
        slots.copy_(self.torch.tensor([q.slot for q in decoding], device=dev))
        replay()
        return out.tolist()

    # ----- one step -----
    def _forward(self, decoding: list[_Seq], chunks: list[tuple[_Seq, int]]) -> list[int]:
        """Run the step; return the sampled token of each decoding sequence, then of each finished prompt."""
        if not chunks and len(decoding) in self._graphs:
            return self._decode_graph(decoding)
        torch, m, s = self.torch, self.model, self.model.spec
        dev = m.dev.device
        b = len(decoding)
        ids = [q.token for q in decoding]
        pos = [self.cfg.input_len + q.generated - 1 for q in decoding]
        for q, c in chunks:
            ids.extend(self.prompts[q.done:q.done + c].tolist())
            pos.extend(range(q.done, q.done + c))
        ids_t = torch.tensor(ids, device=dev)
        pos_t = torch.tensor(pos, device=dev)
        slots = torch.tensor([q.slot for q in decoding] + [q.slot for q, c in chunks for _ in range(c)], device=dev)
        dec_slots = slots[:b]
        cos, sin = m.cos[pos_t][:, None, :], m.sin[pos_t][:, None, :]
        ctx = max(pos[:b]) + 1 if b else 0
        keep = (torch.arange(ctx, device=dev)[None, :] <= pos_t[:b, None])[:, None, None, :] if b else None
        x = m.embed[ids_t][None]
        group = s.heads // s.kv_heads
        for layer, (kc, vc) in zip(m.layers, self.caches, strict=True):
            def attend(q: Any, k: Any, v: Any, kc: Any = kc, vc: Any = vc) -> Any:
                q, k, v = q[0], k[0], v[0]                     # (tokens, heads, d)
                kc[slots, :, pos_t] = k
                vc[slots, :, pos_t] = v
                parts = []
                if b:   # the query heads of one KV head ride as its query rows
                    qd = q[:b].reshape(b, s.kv_heads, group, s.head_dim)
                    o = torch.nn.functional.scaled_dot_product_attention(
                        qd, kc[dec_slots, :, :ctx], vc[dec_slots, :, :ctx], attn_mask=keep)
                    parts.append(o.reshape(b, s.heads * s.head_dim))
                start = b
                for seq, c in chunks:
                    qc = q[start:start + c].transpose(0, 1)[None]           # (1, heads, c, d)
                    end = seq.done + c
                    kk = kc[seq.slot, :, :end].repeat_interleave(group, 0)[None]
                    vv = vc[seq.slot, :, :end].repeat_interleave(group, 0)[None]
                    causal = torch.arange(end, device=dev)[None, :] <= torch.arange(seq.done, end, device=dev)[:, None]
                    o = torch.nn.functional.scaled_dot_product_attention(qc, kk, vv, attn_mask=causal)
                    parts.append(o[0].transpose(0, 1).reshape(c, s.heads * s.head_dim))
                    start += c
                return torch.cat(parts)[None]
            x = m._layer(x, layer, cos, sin, attend)
        rows = list(range(b))
        offset = b
        for seq, c in chunks:
            offset += c
            if seq.done + c >= self.cfg.input_len:
                rows.append(offset - 1)
        if not rows:        # a step of prompt chunks only: wait for the device all the same
            m.dev.sync()
            return []
        h = m._norm(x[0, rows], m.final_norm)
        logits = torch.nn.functional.linear(h, m.lm_head)
        return logits.argmax(-1).clamp_(min=1).tolist()        # back on the host: the step is over

    # ----- the run -----
    def run(self, arrivals: np.ndarray, clock: Any = time.perf_counter) -> ServeLog:
        """Serve requests arriving at `arrivals` (seconds from the start, sorted) until all have finished."""
        cfg = self.cfg
        n = len(arrivals)
        log = ServeLog(cfg.output_len, arrival=list(map(float, arrivals)), first=[0.0] * n, finish=[0.0] * n)
        free = list(range(cfg.max_batch - 1, -1, -1))
        waiting: list[int] = []
        prefilling: list[_Seq] = []
        decoding: list[_Seq] = []
        nxt, done = 0, 0
        t0 = clock()
        while done < n:
            now = clock() - t0
            while nxt < n and arrivals[nxt] <= now:
                waiting.append(nxt)
                nxt += 1
            if not (waiting or prefilling or decoding):
                time.sleep(max(arrivals[nxt] - now, 0.0))
                continue
            start = clock()
            while waiting and len(prefilling) + len(decoding) < cfg.max_batch:
                prefilling.append(_Seq(waiting.pop(0), free.pop()))
            b = len(decoding)
            budget = cfg.token_budget - b
            chunks: list[tuple[_Seq, int]] = []
            for seq in prefilling:
                if budget <= 0:
                    break
                c = min(cfg.input_len - seq.done, budget)
                chunks.append((seq, c))
                budget -= c
            ctx = sum(cfg.input_len + q.generated for q in decoding)
            pairs = sum(c * seq.done + c * (c + 1) / 2.0 for seq, c in chunks)
            tokens = self._forward(decoding, chunks)
            end = clock() - t0
            emit = len(tokens)
            for seq, tok in zip(decoding, tokens, strict=False):
                seq.token, seq.generated = tok, seq.generated + 1
            for seq, c in chunks:
                seq.done += c
            finished_prompts = [seq for seq, _ in chunks if seq.done >= cfg.input_len]
            for seq, tok in zip(finished_prompts, tokens[b:], strict=True):
                seq.token, seq.generated = tok, 1
                log.first[seq.rid] = end
            prefilling = [q for q in prefilling if q.done < cfg.input_len]
            running = decoding + finished_prompts
            decoding = []
            for seq in running:
                if seq.generated >= cfg.output_len:
                    log.finish[seq.rid] = end
                    free.append(seq.slot)
                    done += 1
                else:
                    decoding.append(seq)
            log.steps.append((b, float(ctx), sum(c for _, c in chunks), pairs, emit, clock() - start))
        return log
