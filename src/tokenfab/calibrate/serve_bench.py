"""A small continuous-batching server on the random-weight Llama: real queueing to check the simulator by.

It schedules the way `serve/engine.py` models TensorRT-LLM's no-evict policy: at each step boundary, admit
arrived requests first come first served up to `max_batch` (each holds a KV slot for its whole prompt +
output), then run one step that decodes a token for every running sequence and fills the rest of
`token_budget`, in multiples of `chunk_unit`, with prompt chunks in arrival order. A prompt whose last
chunk ran emits its first token in that step and decodes from the next one. All of a step's tokens go
through each layer's GEMMs together; decode rows attend to their own slot, prompt rows to their own
prompt's slot up to their position, each group in one attention call. The step ends when the sampled
tokens are back on the host, as a server streams them.

Every step is logged with its shape (the `StepShapes` fields) and wall time, every request with its
arrival, first token and finish, so the same arrivals can be simulated with a step model fitted on part
of the logged steps and the latencies compared.

Every step has one static form (`_step`): decode rows padded to a fixed count, prompt rows in whole
chunk units, a fixed number of chunk slots. On a GPU each shape that can occur is captured once as a CUDA
graph (`capture_graphs`) and replayed, as serving engines replay decode: eagerly, launching a thousand
small kernels a step, the host set the pace, and steps with prompt work took 35-200 ms whatever their size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokenfab.calibrate.model_bench import TorchLlama, as_graph

# decode rows of a step with prompt work are padded to a multiple of this (bounds the shapes to capture)
DECODE_PAD = 8


@dataclass(frozen=True)
class ServeConfig:
    max_batch: int       # sequences in flight (slots)
    token_budget: int    # tokens per step: decode tokens + prompt chunk
    input_len: int       # every request's prompt
    output_len: int      # generated tokens (the first one included): every request's, or the most any may ask
    chunk_unit: int = 1  # prompt tokens per step come in multiples of this (TensorRT-LLM's chunk unit)

    def __post_init__(self) -> None:
        if self.token_budget < self.max_batch + self.chunk_unit:
            raise ValueError("token_budget must leave room for one chunk unit beside max_batch decode tokens")
        if self.input_len % self.chunk_unit:
            raise ValueError("input_len must be a multiple of chunk_unit")

    @property
    def max_chunks(self) -> int:
        """Prompt chunks one step can hold: whole prompts between a partial first and a partial last."""
        return self.token_budget // self.input_len + 2


@dataclass
class ServeLog:
    """What one run measured: per step (shape, seconds) and per request (arrival, first token, finish,
    tokens generated)."""

    steps: list[tuple[int, float, int, float, int, float]] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)
    output: list[int] = field(default_factory=list)

    def latencies(self) -> dict[str, float]:
        """TTFT and TPOT mean and percentiles (ms), as the simulator reports them (TPOT of requests with
        more than one output token)."""
        arrival, first, finish, output = (np.asarray(a) for a in (self.arrival, self.first, self.finish, self.output))
        many = output > 1
        out: dict[str, float] = {}
        for name, values in (("ttft", (first - arrival) * 1e3),
                             ("tpot", (finish - first)[many] * 1e3 / (output[many] - 1))):
            out[f"{name}_ms_mean"] = float(values.mean())
            for q in (50, 90, 99):
                out[f"{name}_ms_p{q}"] = float(np.percentile(values, q))
        return out


@dataclass
class StepInputs:
    """One step's inputs, decode rows first: B decode rows (token, position, slot), P prompt rows (token,
    position, chunk index), K chunk slots, and the B + K rows whose sampled token is read back (each decode
    row, then the last row of each chunk). Padding rows and chunks use the scratch slot."""

    dec_ids: Any
    dec_pos: Any
    dec_slots: Any
    p_ids: Any
    p_pos: Any
    p_chunk: Any
    chunk_slots: Any
    emit: Any
    out: Any = None


class _Seq:
    __slots__ = ("rid", "slot", "out_len", "done", "generated", "token")

    def __init__(self, rid: int, slot: int, out_len: int = 1) -> None:
        self.rid, self.slot, self.out_len, self.done, self.generated, self.token = rid, slot, out_len, 0, 0, 1


class MiniServer:
    """The server's state on one device: the model, a KV slot per sequence (and a scratch slot that padding
    rows write to), the captured step graphs."""

    def __init__(self, model: TorchLlama, cfg: ServeConfig) -> None:
        self.model, self.cfg = model, cfg
        dev, s = model.dev, model.spec
        self.torch = dev.torch
        self.length = cfg.input_len + cfg.output_len
        self.scratch = cfg.max_batch
        shape = (cfg.max_batch + 1, s.kv_heads, self.length, s.head_dim)
        self.caches = [(self.torch.zeros(shape, dtype=self.torch.bfloat16, device=dev.device),
                        self.torch.zeros(shape, dtype=self.torch.bfloat16, device=dev.device))
                       for _ in range(s.layers)]
        self.prompts = model.token_ids(1, cfg.input_len)[0].cpu().numpy()
        self._graphs: dict[tuple[int, int], tuple[Any, StepInputs]] = {}

    # ----- shapes and inputs -----
    def step_shape(self, b: int, prompt_tokens: int) -> tuple[int, int]:
        """The static shape (decode rows, prompt rows) a step of b decode sequences and these prompt tokens
        runs as: decode-only steps exactly, steps with prompt work with decode rows padded to DECODE_PAD."""
        if not prompt_tokens:
            return b, 0
        return max(-(-b // DECODE_PAD), 1) * DECODE_PAD, prompt_tokens

    def graph_shapes(self) -> list[tuple[int, int]]:
        """Every shape a run can produce, largest first (the first capture sizes the shared memory pool)."""
        cfg, unit = self.cfg, self.cfg.chunk_unit
        shapes = {self.step_shape(b, p) for b in range(cfg.max_batch + 1)
                  for p in range(0, cfg.token_budget - b + 1, unit) if b or p}
        return sorted(shapes, key=lambda bp: (bp[0] + bp[1], bp), reverse=True)

    def _host_inputs(self, decoding: list[_Seq], chunks: list[tuple[_Seq, int]], rows: int,
                     n_chunks: int) -> dict[str, np.ndarray]:
        cfg, b = self.cfg, len(decoding)
        dec = np.zeros((3, rows), dtype=np.int64)
        dec[0] = 1
        dec[2] = self.scratch
        dec[:, :b] = [[q.token for q in decoding], [cfg.input_len + q.generated - 1 for q in decoding],
                      [q.slot for q in decoding]]
        emit = np.zeros(rows + n_chunks, dtype=np.int64)
        emit[:b] = np.arange(b)
        chunk_slots = np.full(n_chunks, self.scratch, dtype=np.int64)
        ids, pos, owner = [], [], []
        row = rows
        for j, (seq, c) in enumerate(chunks):
            ids.append(self.prompts[seq.done:seq.done + c])
            pos.append(np.arange(seq.done, seq.done + c))
            owner.append(np.full(c, j))
            chunk_slots[j] = seq.slot
            row += c
            if seq.done + c >= cfg.input_len:
                emit[rows + j] = row - 1
        flat = [np.concatenate(a).astype(np.int64) if a else np.zeros(0, dtype=np.int64) for a in (ids, pos, owner)]
        return {"dec_ids": dec[0], "dec_pos": dec[1], "dec_slots": dec[2], "p_ids": flat[0], "p_pos": flat[1],
                "p_chunk": flat[2], "chunk_slots": chunk_slots, "emit": emit}

    def _device_inputs(self, host: dict[str, np.ndarray]) -> StepInputs:
        dev = self.model.dev.device
        io = StepInputs(**{k: self.torch.from_numpy(v).to(dev) for k, v in host.items()})
        io.out = self.torch.zeros(io.emit.shape[0], dtype=self.torch.long, device=dev)
        return io

    # ----- the step -----
    def _step(self, io: StepInputs) -> None:
        """One step in its static form; the sampled tokens land in `io.out`."""
        torch, m, s = self.torch, self.model, self.model.spec
        sdpa = torch.nn.functional.scaled_dot_product_attention
        rows, prompt, k_slots = io.dec_ids.shape[0], io.p_ids.shape[0], io.chunk_slots.shape[0]
        group, dev, span = s.heads // s.kv_heads, io.dec_ids.device, self.cfg.input_len
        ids = torch.cat([io.dec_ids, io.p_ids])
        pos = torch.cat([io.dec_pos, io.p_pos])
        slots = torch.cat([io.dec_slots, io.chunk_slots[io.p_chunk]])
        cos, sin = m.cos[pos][:, None, :], m.sin[pos][:, None, :]
        dec_keep = (torch.arange(self.length, device=dev)[None, :] <= io.dec_pos[:, None])[:, None, None, :]
        # prompt row r sees the keys of its own chunk's slot up to its position
        key = torch.arange(k_slots * span, device=dev)
        key_chunk, key_pos = key // span, key % span
        p_keep = ((key_chunk[None, :] == io.p_chunk[:, None]) & (key_pos[None, :] <= io.p_pos[:, None]))[None, None]
        x = m.embed[ids][None]
        for layer, (kc, vc) in zip(m.layers, self.caches, strict=True):
            def attend(q: Any, k: Any, v: Any, kc: Any = kc, vc: Any = vc) -> Any:
                q = q[0]                                        # (tokens, heads, d)
                kc[slots, :, pos] = k[0]
                vc[slots, :, pos] = v[0]
                parts = []
                if rows:   # the query heads of one KV head ride as its query rows
                    qd = q[:rows].reshape(rows, s.kv_heads, group, s.head_dim)
                    o = sdpa(qd, kc[io.dec_slots], vc[io.dec_slots], attn_mask=dec_keep)
                    parts.append(o.reshape(rows, s.heads * s.head_dim))
                if prompt:
                    def keys(cache: Any) -> Any:   # (1, heads, chunks x span, d), each KV head once per query head
                        kv = cache[io.chunk_slots, :, :span].transpose(0, 1).reshape(s.kv_heads, 1, -1, s.head_dim)
                        return kv.expand(-1, group, -1, -1).reshape(1, s.heads, -1, s.head_dim)
                    o = sdpa(q[rows:].transpose(0, 1)[None], keys(kc), keys(vc), attn_mask=p_keep)
                    parts.append(o[0].transpose(0, 1).reshape(prompt, s.heads * s.head_dim))
                return torch.cat(parts)[None]
            x = m._layer(x, layer, cos, sin, attend)
        h = m._norm(x[0, io.emit], m.final_norm)
        io.out.copy_(torch.nn.functional.linear(h, m.lm_head).argmax(-1).clamp_(min=1))

    def capture_graphs(self) -> str:
        """On a GPU, capture every step shape a run can produce (`graph_shapes`) as a CUDA graph, all in one
        memory pool since steps run one at a time; a failed capture raises, since eager steps would leave the
        host setting the pace. Returns how steps will run: cudagraph, or eager on a CPU."""
        dev = self.model.dev
        if not dev.is_cuda:
            return "eager"
        pool = self.torch.cuda.graph_pool_handle()
        for rows, prompt in self.graph_shapes():
            host = self._host_inputs([], [], rows, self.cfg.max_chunks if prompt else 0)
            host.update(p_ids=np.ones(prompt, dtype=np.int64), p_pos=np.arange(prompt) % self.cfg.input_len,
                        p_chunk=np.zeros(prompt, dtype=np.int64))
            io = self._device_inputs(host)
            replay, _ = as_graph(dev, lambda io=io: self._step(io), pool, strict=True)
            self._graphs[(rows, prompt)] = (replay, io)
        return "cudagraph"

    def _forward(self, decoding: list[_Seq], chunks: list[tuple[_Seq, int]]) -> list[int]:
        """Run the step; return the sampled token of each decoding sequence, then of each finished prompt."""
        b = len(decoding)
        shape = self.step_shape(b, sum(c for _, c in chunks))
        graph = self._graphs.get(shape)
        rows, n_chunks = (shape[0], self.cfg.max_chunks if shape[1] else 0) if graph else (b, len(chunks))
        host = self._host_inputs(decoding, chunks, rows, n_chunks)
        if graph:
            replay, io = graph
            for name, value in host.items():
                getattr(io, name).copy_(self.torch.from_numpy(value))
            replay()
        else:
            io = self._device_inputs(host)
            self._step(io)
        out = io.out.tolist()                                   # back on the host: the step is over
        finished = [rows + j for j, (seq, c) in enumerate(chunks) if seq.done + c >= self.cfg.input_len]
        return out[:b] + [out[i] for i in finished]

    # ----- the run -----
    def run(self, arrivals: np.ndarray, clock: Any = time.perf_counter, outputs: np.ndarray | None = None) -> ServeLog:
        """Serve requests arriving at `arrivals` (seconds from the start, sorted) until all have finished;
        each generates `output_len` tokens, or its own number from `outputs` (1..output_len)."""
        cfg = self.cfg
        n = len(arrivals)
        outputs = np.full(n, cfg.output_len) if outputs is None else np.asarray(outputs, dtype=int)
        if outputs.shape != (n,) or outputs.min(initial=1) < 1 or outputs.max(initial=1) > cfg.output_len:
            raise ValueError(f"outputs: one per request, each 1..{cfg.output_len} (the slot's room)")
        log = ServeLog(arrival=list(map(float, arrivals)), first=[0.0] * n, finish=[0.0] * n,
                       output=[int(o) for o in outputs])
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
                rid = waiting.pop(0)
                prefilling.append(_Seq(rid, free.pop(), log.output[rid]))
            b = len(decoding)
            budget = (cfg.token_budget - b) // cfg.chunk_unit * cfg.chunk_unit
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
                if seq.generated >= seq.out_len:
                    log.finish[seq.rid] = end
                    free.append(seq.slot)
                    done += 1
                else:
                    decoding.append(seq)
            log.steps.append((b, float(ctx), sum(c for _, c in chunks), pairs, emit, clock() - start))
        return log
