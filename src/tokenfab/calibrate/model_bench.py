"""Measured decode and prefill step times of a Llama-architecture model with random weights.

The model is built in PyTorch from a `ModelSpec` (a shipped config.json, nothing downloaded): fused QKV
and gate/up projections, RMSNorm, rotary embeddings, SDPA attention over a preallocated KV cache, an LM
head on the rows that emit a token. Each grid point becomes one row of the `predict` query schema:

- decode (batch B, context L): scenario `static`, input_len L, output_len 2, metric `tpot_ms_mean` —
  a static batch whose only decode step attends to L + 1 tokens, which is exactly the step timed here
  (the KV cache holds L random tokens, the step writes token L + 1 and reads all of them);
- prefill (batch B, prompt L): scenario `prefill`, metric `ttft_ms_mean` — one step over B x L tokens.

On a GPU each step is captured in a CUDA graph, as serving engines run decode, so the host's launch
cost does not hide the device's time; on a CPU it runs eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tokenfab.calibrate.microbench import _sdpa
from tokenfab.calibrate.torchenv import TorchDevice
from tokenfab.model import ModelSpec


class ModelBenchError(ValueError):
    """A model this benchmark cannot build (not a dense Llama-architecture transformer)."""


@dataclass(frozen=True)
class StepGrid:
    """Batch sizes and lengths to time; points whose B x L exceeds the caps are left out."""

    decode_batches: tuple[int, ...]
    decode_lens: tuple[int, ...]
    prefill_batches: tuple[int, ...]
    prefill_lens: tuple[int, ...]
    max_decode_tokens: int
    max_prefill_tokens: int

    def decode_points(self) -> list[tuple[int, int]]:
        return [(b, n) for b in self.decode_batches for n in self.decode_lens if b * n <= self.max_decode_tokens]

    def prefill_points(self) -> list[tuple[int, int]]:
        return [(b, n) for b in self.prefill_batches for n in self.prefill_lens if b * n <= self.max_prefill_tokens]


# GPU: llama-3.1-8b in bf16, batch 1..512 x context 128..8192 (KV cache <= 256K tokens = 32 GiB).
GPU_GRID = StepGrid((1, 2, 4, 8, 16, 32, 64, 128, 256, 512), (128, 512, 2048, 8192), (1, 2, 4, 8, 16, 32),
                    (128, 512, 2048, 8192), 262_144, 32_768)
# CPU: a 2-layer toy model, small enough for CI.
CPU_GRID = StepGrid((1, 2, 4, 8, 16), (32, 128, 512), (1, 2, 4), (32, 128, 512), 8192, 2048)


def check_llama(spec: ModelSpec) -> None:
    if spec.is_moe or spec.is_mla or not spec.gated_mlp or any(g.window for g in spec.layer_groups):
        raise ModelBenchError(f"model {spec.name!r}: only dense Llama-architecture models (gated MLP, GQA, full "
                              "attention) can be benchmarked")
    if spec.head_dim % 2:
        raise ModelBenchError(f"model {spec.name!r}: rotary embeddings need an even head_dim (got {spec.head_dim})")


class TorchLlama:
    """Random-weight Llama in bf16 on one device (weights ~N(0, 0.02), norms near 1: nothing is zero)."""

    def __init__(self, dev: TorchDevice, spec: ModelSpec, max_pos: int, rope_theta: float = 500000.0) -> None:
        check_llama(spec)
        self.dev, self.spec = dev, spec
        torch = dev.torch
        bf16 = torch.bfloat16
        h, d, kvh = spec.hidden, spec.head_dim, spec.kv_heads
        qkv = (spec.heads + 2 * kvh) * d

        def w(*shape: int) -> Any:
            return dev.randn(*shape, dtype=bf16, scale=0.02)

        def norm() -> Any:
            return (dev.randn(h, dtype=bf16, scale=0.01) + 1.0).to(bf16)
        self.embed = w(spec.vocab, h)
        self.layers = [(norm(), w(qkv, h), w(h, spec.heads * d), norm(), w(2 * spec.intermediate, h),
                        w(h, spec.intermediate)) for _ in range(spec.layers)]
        self.final_norm = norm()
        self.lm_head = self.embed if spec.tied_embeddings else w(spec.vocab, h)
        inv = 1.0 / rope_theta ** (torch.arange(0, d, 2, device=dev.device, dtype=torch.float32) / d)
        angles = torch.outer(torch.arange(max_pos, device=dev.device, dtype=torch.float32), inv)
        angles = torch.cat([angles, angles], dim=-1)
        self.cos, self.sin = angles.cos().to(bf16), angles.sin().to(bf16)

    # ----- building blocks -----
    def _norm(self, x: Any, weight: Any) -> Any:
        f = self.dev.torch.nn.functional
        if hasattr(f, "rms_norm"):
            return f.rms_norm(x, (x.shape[-1],), weight, 1e-5)
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * self.dev.torch.rsqrt(var + 1e-5)).to(x.dtype) * weight

    def _rope(self, x: Any, cos: Any, sin: Any) -> Any:
        half = x.shape[-1] // 2
        rotated = self.dev.torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def _layer(self, x: Any, layer: tuple, cos: Any, sin: Any, attend: Callable[[Any, Any, Any], Any]) -> Any:
        f = self.dev.torch.nn.functional
        n1, wqkv, wo, n2, wgu, wd = layer
        s = self.spec
        b, t, _ = x.shape
        q, k, v = f.linear(self._norm(x, n1), wqkv).split(
            [s.heads * s.head_dim, s.kv_heads * s.head_dim, s.kv_heads * s.head_dim], dim=-1)
        q = self._rope(q.view(b, t, s.heads, s.head_dim), cos, sin)
        k = self._rope(k.view(b, t, s.kv_heads, s.head_dim), cos, sin)
        x = x + f.linear(attend(q, k, v.view(b, t, s.kv_heads, s.head_dim)), wo)
        gate, up = f.linear(self._norm(x, n2), wgu).chunk(2, dim=-1)
        return x + f.linear(f.silu(gate) * up, wd)

    def _logits(self, x: Any) -> Any:
        return self.dev.torch.nn.functional.linear(self._norm(x[:, -1], self.final_norm), self.lm_head)

    # ----- steps -----
    def decode(self, ids: Any, caches: list[tuple[Any, Any]], pos: int) -> Any:
        """One decode step: token `pos` of each sequence attends to positions 0..pos of its cache."""
        s = self.spec
        b = ids.shape[0]
        group = s.heads // s.kv_heads
        cos, sin = self.cos[pos:pos + 1, None, :], self.sin[pos:pos + 1, None, :]
        x = self.embed[ids]
        for layer, (kc, vc) in zip(self.layers, caches, strict=True):
            def attend(q: Any, k: Any, v: Any, kc: Any = kc, vc: Any = vc) -> Any:
                kc[:, :, pos] = k[:, 0]
                vc[:, :, pos] = v[:, 0]
                # the query heads sharing a KV head ride as the query length: grouped attention, no KV copy
                o = _sdpa(self.dev, q.reshape(b, s.kv_heads, group, s.head_dim), kc, vc, False)
                return o.reshape(b, 1, s.heads * s.head_dim)
            x = self._layer(x, layer, cos, sin, attend)
        return self._logits(x)

    def prefill(self, ids: Any, caches: list[tuple[Any, Any]] | None = None) -> Any:
        """One prefill step over whole prompts (causal attention); logits of each prompt's last token.
        With `caches`, K and V are also written to their first positions (for decode to continue)."""
        s = self.spec
        b, t = ids.shape
        cos, sin = self.cos[:t, None, :], self.sin[:t, None, :]
        x = self.embed[ids]
        for i, layer in enumerate(self.layers):
            def attend(q: Any, k: Any, v: Any, i: int = i) -> Any:
                k, v = k.transpose(1, 2), v.transpose(1, 2)
                if caches is not None:
                    caches[i][0][:, :, :t] = k
                    caches[i][1][:, :, :t] = v
                o = _sdpa(self.dev, q.transpose(1, 2), k, v, True)
                return o.transpose(1, 2).reshape(b, t, s.heads * s.head_dim)
            x = self._layer(x, layer, cos, sin, attend)
        return self._logits(x)

    # ----- inputs -----
    def token_ids(self, batch: int, length: int) -> Any:
        """Random token ids, never 0 (id 0 is often padding)."""
        torch = self.dev.torch
        return torch.randint(1, self.spec.vocab, (batch, length), device=self.dev.device)

    def kv_cache(self, batch: int, length: int) -> list[tuple[Any, Any]]:
        """Per layer K and V of `length` positions, filled with random values (as if a prompt had run)."""
        s = self.spec
        shape = (batch, s.kv_heads, length, s.head_dim)
        bf16 = self.dev.torch.bfloat16
        return [(self.dev.randn(*shape, dtype=bf16), self.dev.randn(*shape, dtype=bf16)) for _ in range(s.layers)]


def as_graph(dev: TorchDevice, fn: Callable[[], Any], pool: Any = None,
             strict: bool = False) -> tuple[Callable[[], Any], str]:
    """Capture `fn` in a CUDA graph (after warm-up on a side stream); eager where that is not possible,
    unless `strict`, where a failed capture raises. Graphs that never run at the same time may share one
    memory `pool` (`torch.cuda.graph_pool_handle()`)."""
    if not dev.is_cuda:
        return fn, "eager"
    torch = dev.torch
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph, pool=pool):
            fn()
    except RuntimeError:
        if strict:
            raise
        return fn, "eager"
    return graph.replay, "cudagraph"


@dataclass(frozen=True)
class StepTime:
    phase: str           # "decode" or "prefill"
    batch: int
    length: int          # decode: tokens already in the cache; prefill: prompt tokens
    seconds: float
    mode: str            # "cudagraph" or "eager"


def time_steps(model: TorchLlama, grid: StepGrid, progress: Callable[[str], None] | None = None) -> list[StepTime]:
    """Time every grid point: decode steps over a random-filled KV cache, then whole-prompt prefills.

    On a GPU the points run one after another (each holds up to tens of GiB of KV cache and its own
    graph); on a CPU they are small enough to hold at once, so their repeats are taken in rounds."""
    dev = model.dev
    with dev.torch.inference_mode():
        model.prefill(model.token_ids(1, 16))   # first calls pay one-off costs (allocator, kernel selection)
        model.decode(model.token_ids(1, 1), model.kv_cache(1, 17), 16)
        if not dev.is_cuda:
            return _time_steps_in_rounds(model, grid, progress)
        out = []
        for b, n in grid.decode_points():
            if progress:
                progress(f"decode batch {b} context {n}")
            ids = model.token_ids(b, 1)
            caches = model.kv_cache(b, n + 1)
            step, mode = as_graph(dev, lambda ids=ids, caches=caches, n=n: model.decode(ids, caches, n))
            seconds = dev.time(step, warmup=2, repeats=5, min_repeat_s=0.02)
            del step, caches
            _free(dev)
            out.append(StepTime("decode", b, n, seconds, mode))
        for b, n in grid.prefill_points():
            if progress:
                progress(f"prefill batch {b} prompt {n}")
            ids = model.token_ids(b, n)
            step, mode = as_graph(dev, lambda ids=ids: model.prefill(ids))
            seconds = dev.time(step, warmup=1, repeats=5 if b * n <= 8192 else 3, min_repeat_s=0.02)
            del step
            _free(dev)
            out.append(StepTime("prefill", b, n, seconds, mode))
        return out


def _time_steps_in_rounds(model: TorchLlama, grid: StepGrid, progress: Callable[[str], None] | None) -> list[StepTime]:
    if progress:
        progress(f"{len(grid.decode_points())} decode and {len(grid.prefill_points())} prefill steps, in rounds")
    points: list[tuple[str, int, int, Callable[[], Any]]] = []
    for b, n in grid.decode_points():
        ids, caches = model.token_ids(b, 1), model.kv_cache(b, n + 1)
        points.append(("decode", b, n, lambda ids=ids, caches=caches, n=n: model.decode(ids, caches, n)))
    for b, n in grid.prefill_points():
        ids = model.token_ids(b, n)
        points.append(("prefill", b, n, lambda ids=ids: model.prefill(ids)))
    seconds = model.dev.time_many([p[3] for p in points], warmup=2, repeats=7, min_repeat_s=0.01)
    return [StepTime(phase, b, n, s, "eager") for (phase, b, n, _fn), s in zip(points, seconds, strict=True)]


def step_row(st: StepTime, hardware: str, model_id: str, engine: str) -> dict[str, Any]:
    """A measured step as a query row (see the module docstring for the mapping)."""
    decode = st.phase == "decode"
    return {
        "id": f"{hardware}-{model_id}-{st.phase}-b{st.batch}-l{st.length}",
        "source_id": "tokenfab-calibrate", "url": None, "model": model_id, "hardware": hardware,
        "devices": 1, "tp": 1, "pp": 1, "ep": 1, "replicas": 1, "precision": "bf16", "kv_precision": "bf16",
        "engine": f"{engine}-{st.mode}",
        "scenario": "static" if decode else "prefill",
        "input_len": st.length, "output_len": 2 if decode else 1, "input_len_exact": True,
        "batch": st.batch, "concurrency": None, "rate": None, "max_batch": None, "shape": None,
        "metric": "tpot_ms_mean" if decode else "ttft_ms_mean",
        "value": st.seconds * 1e3, "quality": "exact",
        "note": (f"one decode step of {st.batch} sequences over {st.length + 1} KV tokens" if decode else
                 f"one prefill step of {st.batch} x {st.length} prompt tokens")
                + f", random weights, {st.mode}, median of repeats",
    }


def _free(dev: TorchDevice) -> None:
    if dev.is_cuda:
        dev.torch.cuda.empty_cache()
