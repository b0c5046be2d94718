"""The building blocks of one random-weight MoE decoder layer in PyTorch: MLA and GQA attention, routed experts
through grouped GEMMs (bf16 or fp8), and the layer that joins them.

Why apart from the benchmark: the layer is the physics under test (absorbed versus expanded MLA, grouped versus
looped experts, skewed routing), checked against references on a CPU; `moe_bench` only times it on a grid.
"""

from __future__ import annotations

import math
from typing import Any

from tokenfab.calibrate.microbench import _sdpa, fp8_available
from tokenfab.calibrate.torchenv import TorchDevice
from tokenfab.model import ModelSpec

FP8_MAX = 448.0          # largest finite float8_e4m3fn
FP8_ALIGN = 16           # token groups of the fp8 grouped GEMM padded to this many rows (as MoE kernels do)
ZIPF_S = 1.0             # default skew: expert of popularity rank r gets logit bias -s ln(r)
ROUTINGS = ("uniform", "skewed")


class MoEBenchError(ValueError):
    """A model this benchmark cannot build (not a MoE transformer)."""


# ----- kernels -----
def grouped_kernel(dev: TorchDevice) -> tuple[str, bool, str]:
    """(kernel, graphable, why) for the routed experts in bf16. `torch._grouped_mm` where present and correct
    on this device; it runs without a host sync (so inside a CUDA graph) only on sm90/sm100 GPUs."""
    torch = dev.torch
    if not hasattr(torch, "_grouped_mm"):
        return "expert_loop", False, f"torch {torch.__version__} has no torch._grouped_mm"
    try:
        a = dev.randn(48, 64, dtype=torch.bfloat16)
        b = dev.randn(3, 32, 64, dtype=torch.bfloat16, scale=0.1)
        offs = torch.tensor([16, 16, 48], dtype=torch.int32, device=dev.device)   # one empty group
        got = torch._grouped_mm(a, b.transpose(-2, -1), offs=offs).float()
        ref = torch.cat([a[:16] @ b[0].t(), a[16:] @ b[2].t()]).float()
        if not torch.allclose(got, ref, atol=0.05, rtol=0.05):
            return "expert_loop", False, "torch._grouped_mm gave wrong results on this device"
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as err:
        return "expert_loop", False, f"torch._grouped_mm not usable here: {str(err).splitlines()[0][:160]}"
    if not dev.is_cuda:
        return "grouped_mm", False, "torch._grouped_mm (CPU: a loop over groups inside torch)"
    major = torch.cuda.get_device_capability(dev.device)[0]
    fused = major in (9, 10) and not getattr(torch.version, "hip", None)
    return "grouped_mm", fused, ("torch._grouped_mm, fused CUTLASS kernel" if fused else
                                 "torch._grouped_mm fallback (host sync per call: run eagerly)")


def fp8_kernel(dev: TorchDevice) -> tuple[str | None, bool, str]:
    """(kernel, graphable, why) for fp8 expert weights: `torch._scaled_grouped_mm` where it works, else a loop of
    `torch._scaled_mm`; None where the device has no fp8 GEMMs (a CPU: bf16 only there)."""
    torch = dev.torch
    if not fp8_available(dev):
        why = ("CPU run: fp8 expert GEMMs are measured on GPUs only (bf16 here)" if not dev.is_cuda else
               "fp8 GEMMs need an NVIDIA GPU of compute capability 8.9+ and torch._scaled_mm")
        return None, False, why
    a = dev.randn(48, 64, dtype=torch.bfloat16)
    w = dev.randn(3, 32, 64, dtype=torch.bfloat16, scale=0.1)
    w8, sw = quant_rows(dev, w)
    offs = torch.tensor([16, 16, 48], dtype=torch.int32, device=dev.device)
    ref = torch.cat([a[:16] @ w[0].t(), a[16:] @ w[2].t()]).float()
    errors = []
    for kernel in ("scaled_grouped_mm", "scaled_mm_loop"):
        try:
            got = _fp8_gemm(dev, kernel, a, w8, sw, offs, [16, 0, 32]).float()
            if torch.allclose(got, ref, atol=0.1 * ref.abs().max().item(), rtol=0.1):
                why = f"torch._{kernel.removesuffix('_loop')}: fp8 e4m3 weights and activations, rowwise scales"
                return kernel, kernel == "scaled_grouped_mm", why
            errors.append(f"{kernel}: wrong results")
        except (RuntimeError, ValueError, TypeError, NotImplementedError, AttributeError) as err:
            errors.append(f"{kernel}: {str(err).splitlines()[0][:120]}")
    return None, False, "no fp8 GEMM usable: " + "; ".join(errors)


def quant_rows(dev: TorchDevice, x: Any) -> tuple[Any, Any]:
    """float8_e4m3fn values and float32 scales of `x`, one scale per row (last dim reduced)."""
    torch = dev.torch
    scale = x.abs().amax(-1, keepdim=True).float().clamp(min=1e-12) / FP8_MAX
    return (x.float() / scale).to(torch.float8_e4m3fn), scale.squeeze(-1)


def _fp8_gemm(dev: TorchDevice, kernel: str, x: Any, w8: Any, sw: Any, offs: Any, counts: list[int] | None) -> Any:
    """x (M, K) times each group's fp8 weight w8 (E, N, K) with row scales sw (E, N); rows grouped by `offs`."""
    torch = dev.torch
    a8, sa = quant_rows(dev, x)
    if kernel == "scaled_grouped_mm":
        return torch._scaled_grouped_mm(a8, w8.transpose(-2, -1), sa, sw, offs=offs, out_dtype=torch.bfloat16)
    out = torch.zeros(x.shape[0], w8.shape[1], dtype=torch.bfloat16, device=x.device)
    start = 0
    for e, n in enumerate(counts or ()):
        if n:
            r = torch._scaled_mm(a8[start:start + n], w8[e].t(), scale_a=sa[start:start + n, None],
                                 scale_b=sw[e][None, :], out_dtype=torch.bfloat16)
            out[start:start + n] = r[0] if isinstance(r, tuple) else r
        start += n
    return out


# ----- building blocks -----
class _Weights:
    def __init__(self, dev: TorchDevice, dtype: Any) -> None:
        self.dev, self.dtype = dev, dtype

    def w(self, *shape: int) -> Any:
        return self.dev.randn(*shape, dtype=self.dtype, scale=0.02)

    def norm(self, n: int) -> Any:
        return (self.dev.randn(n, dtype=self.dtype, scale=0.01) + 1.0).to(self.dtype)


def rms_norm(dev: TorchDevice, x: Any, weight: Any, eps: float = 1e-6) -> Any:
    f = dev.torch.nn.functional
    if hasattr(f, "rms_norm"):
        return f.rms_norm(x, (x.shape[-1],), weight, eps)
    var = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * dev.torch.rsqrt(var + eps)).to(x.dtype) * weight


class Rope:
    """Rotary tables for `dim` channels (half-rotation form; DeepSeek's interleaved form costs the same)."""

    def __init__(self, dev: TorchDevice, dim: int, max_pos: int, dtype: Any, theta: float) -> None:
        torch = dev.torch
        inv = 1.0 / theta ** (torch.arange(0, dim, 2, device=dev.device, dtype=torch.float32) / dim)
        angles = torch.outer(torch.arange(max_pos, device=dev.device, dtype=torch.float32), inv)
        angles = torch.cat([angles, angles], dim=-1)
        self.torch, self.cos, self.sin = torch, angles.cos().to(dtype), angles.sin().to(dtype)

    def __call__(self, x: Any, start: int) -> Any:
        """x (B, T, [heads,] dim) at positions start..start+T-1."""
        t = x.shape[1]
        shape = (1, t) + (1,) * (x.dim() - 3) + (x.shape[-1],)
        cos, sin = self.cos[start:start + t].view(shape), self.sin[start:start + t].view(shape)
        half = x.shape[-1] // 2
        return x * cos + self.torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class MLA:
    """DeepSeek-V3 multi-head latent attention: absorbed decode over the latent cache, expanded prefill."""

    def __init__(self, dev: TorchDevice, spec: ModelSpec, w: _Weights, rope: Rope) -> None:
        self.dev, self.rope = dev, rope
        h, nh, r = spec.hidden, spec.heads, spec.mla_kv_rank
        self.nh, self.r, self.rd = nh, r, spec.mla_rope_dim
        self.nope, self.vd = spec.head_dim - spec.mla_rope_dim, spec.v_head_dim
        self.q_rank = spec.mla_q_rank
        if self.q_rank:
            self.wq_a, self.q_norm, self.wq_b = w.w(self.q_rank, h), w.norm(self.q_rank), w.w(nh * spec.head_dim,
                                                                                              self.q_rank)
        else:
            self.wq = w.w(nh * spec.head_dim, h)
        self.wkv_a, self.kv_norm = w.w(r + self.rd, h), w.norm(r)
        self.wkv_b = w.w(nh * (self.nope + self.vd), r)
        self.wo = w.w(h, nh * self.vd)
        kvb = self.wkv_b.view(nh, self.nope + self.vd, r)
        self.w_uk = kvb[:, :self.nope]                              # (heads, nope, latent)
        self.w_uv_t = kvb[:, self.nope:].transpose(1, 2)            # (heads, latent, v)
        self.scale = 1.0 / math.sqrt(spec.head_dim)                 # the expanded form's q.k width

    @property
    def cache_width(self) -> int:
        return self.r + self.rd

    def _q(self, x: Any, start: int) -> tuple[Any, Any]:
        f = self.dev.torch.nn.functional
        b, t, _ = x.shape
        if self.q_rank:
            q = f.linear(rms_norm(self.dev, f.linear(x, self.wq_a), self.q_norm), self.wq_b)
        else:
            q = f.linear(x, self.wq)
        q = q.view(b, t, self.nh, self.nope + self.rd)
        return q[..., :self.nope], self.rope(q[..., self.nope:], start)

    def latent(self, x: Any, start: int) -> Any:
        """What the cache holds per token: normalised latent (kv_lora_rank) + rotated shared key (rope dims)."""
        kv = self.dev.torch.nn.functional.linear(x, self.wkv_a)
        c = rms_norm(self.dev, kv[..., :self.r], self.kv_norm)
        return self.dev.torch.cat([c, self.rope(kv[..., self.r:], start)], dim=-1)

    def prefill(self, x: Any) -> Any:
        """Expanded form: per-head K/V decompressed from the latent, causal attention (q.k 192, v 128 wide)."""
        torch = self.dev.torch
        b, t, _ = x.shape
        q_nope, q_rope = self._q(x, 0)
        lat = self.latent(x, 0)
        kv = torch.nn.functional.linear(lat[..., :self.r], self.wkv_b).view(b, t, self.nh, self.nope + self.vd)
        k_rope = lat[..., None, self.r:].expand(b, t, self.nh, self.rd)
        q = torch.cat([q_nope, q_rope], dim=-1).transpose(1, 2)
        k = torch.cat([kv[..., :self.nope], k_rope], dim=-1).transpose(1, 2)
        v = kv[..., self.nope:].transpose(1, 2)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return torch.nn.functional.linear(o.transpose(1, 2).reshape(b, t, self.nh * self.vd), self.wo)

    def decode(self, x: Any, cache: Any, pos: int) -> Any:
        """Absorbed form: token `pos` (x (B, 1, hidden)) attends to cache positions 0..pos in latent space."""
        torch = self.dev.torch
        b = x.shape[0]
        q_nope, q_rope = self._q(x, pos)
        cache[:, pos] = self.latent(x, pos)[:, 0]
        q_lat = torch.bmm(q_nope[:, 0].transpose(0, 1), self.w_uk).transpose(0, 1)    # (B, heads, latent)
        q = torch.cat([q_lat, q_rope[:, 0]], dim=-1)[:, None]                          # (B, 1, heads, latent+rope)
        kv = cache[:, None, :pos + 1]
        # one latent "KV head" shared by all query heads, which ride as the query length
        o = torch.nn.functional.scaled_dot_product_attention(q, kv, kv[..., :self.r], scale=self.scale)
        o = torch.bmm(o[:, 0].transpose(0, 1), self.w_uv_t).transpose(0, 1)            # (B, heads, v)
        return torch.nn.functional.linear(o.reshape(b, 1, self.nh * self.vd), self.wo)

    def make_cache(self, batch: int, length: int, dtype: Any) -> Any:
        return self.dev.randn(batch, length, self.cache_width, dtype=dtype)


class GQA:
    """Grouped-query attention (Qwen3-MoE, Mixtral) over a K/V cache, as `model_bench` runs it."""

    def __init__(self, dev: TorchDevice, spec: ModelSpec, w: _Weights, rope: Rope) -> None:
        self.dev, self.rope = dev, rope
        self.nh, self.kvh, self.d = spec.heads, spec.kv_heads, spec.head_dim
        self.wqkv = w.w((self.nh + 2 * self.kvh) * self.d, spec.hidden)
        self.wo = w.w(spec.hidden, self.nh * self.d)

    def _qkv(self, x: Any, start: int) -> tuple[Any, Any, Any]:
        b, t, _ = x.shape
        q, k, v = self.dev.torch.nn.functional.linear(x, self.wqkv).split(
            [self.nh * self.d, self.kvh * self.d, self.kvh * self.d], dim=-1)
        q = self.rope(q.view(b, t, self.nh, self.d), start)
        k = self.rope(k.view(b, t, self.kvh, self.d), start)
        return q, k, v.view(b, t, self.kvh, self.d)

    def prefill(self, x: Any) -> Any:
        b, t, _ = x.shape
        q, k, v = self._qkv(x, 0)
        o = _sdpa(self.dev, q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), True)
        return self.dev.torch.nn.functional.linear(o.transpose(1, 2).reshape(b, t, self.nh * self.d), self.wo)

    def decode(self, x: Any, cache: tuple[Any, Any], pos: int) -> Any:
        b = x.shape[0]
        q, k, v = self._qkv(x, pos)
        kc, vc = cache
        kc[:, :, pos] = k[:, 0]
        vc[:, :, pos] = v[:, 0]
        q = q.reshape(b, self.kvh, self.nh // self.kvh, self.d)   # the query heads of a KV head as its queries
        o = _sdpa(self.dev, q, kc[:, :, :pos + 1], vc[:, :, :pos + 1], False)
        return self.dev.torch.nn.functional.linear(o.reshape(b, 1, self.nh * self.d), self.wo)

    def make_cache(self, batch: int, length: int, dtype: Any) -> tuple[Any, Any]:
        shape = (batch, self.kvh, length, self.d)
        return self.dev.randn(*shape, dtype=dtype), self.dev.randn(*shape, dtype=dtype)


class MoE:
    """Router, routed experts (grouped GEMM or per-expert loop, bf16 or fp8 weights) and shared experts."""

    def __init__(self, dev: TorchDevice, spec: ModelSpec, cfg: dict[str, Any], w: _Weights, kernel: str) -> None:
        self.dev, self.dtype, self.kernel = dev, w.dtype, kernel
        e, h, i = spec.experts, spec.hidden, spec.expert_intermediate
        self.e, self.k, self.i = e, spec.top_k, i
        self.router = w.w(e, h)
        self.w_gu, self.w_down = w.w(e, 2 * i, h), w.w(e, h, i)          # (E, N, K): out = x @ w[e].T
        width = spec.shared_experts * spec.shared_expert_width
        self.shared = (w.w(2 * width, h), w.w(h, width)) if width else None
        self.sigmoid = cfg.get("scoring_func") == "sigmoid"
        self.scaling = float(cfg.get("routed_scaling_factor") or 1.0)
        self.bias: Any = None
        self.routing, self.zipf_s = "uniform", 0.0
        self.fp8: tuple[Any, Any, Any, Any] | None = None
        self.align = 1
        self.last_counts: Any = None

    def set_routing(self, routing: str, zipf_s: float = ZIPF_S, seed: int = 0) -> None:
        """`uniform`: the random router alone. `skewed`: experts get popularity ranks (a seeded permutation) and
        logit bias -s ln(rank), so an expert's odds fall as rank^-s (Zipf)."""
        if routing not in ROUTINGS:
            raise ValueError(f"routing {routing!r}: allowed {', '.join(ROUTINGS)}")
        torch = self.dev.torch
        self.routing, self.zipf_s = routing, zipf_s if routing == "skewed" else 0.0
        if routing == "uniform":
            self.bias = None
            return
        gen = torch.Generator().manual_seed(seed)
        ranks = torch.randperm(self.e, generator=gen).float() + 1.0
        self.bias = (-zipf_s * ranks.log()).to(self.dev.device)

    def to_fp8(self, kernel: str) -> None:
        """Expert weights to float8_e4m3fn with one scale per output row; the bf16 copies are dropped."""
        torch = self.dev.torch
        parts: list[list[Any]] = [[], [], [], []]
        for e in range(self.e):   # expert by expert: no full-size float32 temporaries
            for j, wt in enumerate((self.w_gu[e], self.w_down[e])):
                q, s = quant_rows(self.dev, wt)
                parts[2 * j].append(q)
                parts[2 * j + 1].append(s)
        self.fp8 = tuple(torch.stack(p) for p in parts)   # type: ignore[assignment]
        self.w_gu = self.w_down = None
        self.kernel, self.align = kernel, FP8_ALIGN if kernel == "scaled_grouped_mm" else 1

    def route(self, x: Any) -> tuple[Any, Any]:
        """Top-k expert ids (T, k) and their weights (T, k) of tokens x (T, hidden)."""
        logits = self.dev.torch.nn.functional.linear(x, self.router).float()
        if self.bias is not None:
            logits = logits + self.bias
        scores = logits.sigmoid() if self.sigmoid else logits.softmax(-1)
        weights, ids = scores.topk(self.k, dim=-1)
        return ids, weights / weights.sum(-1, keepdim=True) * self.scaling

    def __call__(self, x: Any) -> Any:
        torch = self.dev.torch
        t, h = x.shape
        ids, weights = self.route(x)
        flat = ids.reshape(-1)
        order = flat.argsort(stable=True)                  # token copies sorted by expert
        tokens = order // self.k
        counts = torch.zeros(self.e, dtype=torch.int64, device=x.device).index_add_(0, flat, torch.ones_like(flat))
        self.last_counts = counts
        xs = x[tokens]
        pos, rows = None, counts
        if self.align > 1:   # each expert's rows start on a multiple of `align`: scatter into a padded buffer
            rows = (counts + self.align - 1) // self.align * self.align
            e_sorted = flat[order]
            pos = ((rows.cumsum(0) - rows)[e_sorted] - (counts.cumsum(0) - counts)[e_sorted]
                   + torch.arange(flat.numel(), device=x.device))
            buf = torch.zeros(flat.numel() + self.e * (self.align - 1), h, dtype=x.dtype, device=x.device)
            xs = buf.index_copy_(0, pos, xs)
        offs = rows.cumsum(0).to(torch.int32)
        host_counts = rows.tolist() if self.kernel.endswith("loop") else None   # the loops need them on the host
        gu = self._gemm(xs, 0, offs, host_counts)
        act = torch.nn.functional.silu(gu[:, :self.i]) * gu[:, self.i:]
        y = self._gemm(act, 1, offs, host_counts)
        if pos is not None:
            y = y[pos]
        y = y * weights.reshape(-1)[order, None].to(y.dtype)
        out = torch.zeros_like(x).index_add_(0, tokens, y.to(x.dtype))
        if self.shared is not None:
            gate, up = torch.nn.functional.linear(x, self.shared[0]).chunk(2, dim=-1)
            out = out + torch.nn.functional.linear(torch.nn.functional.silu(gate) * up, self.shared[1])
        return out

    def _gemm(self, x: Any, which: int, offs: Any, counts: list[int] | None) -> Any:
        torch = self.dev.torch
        if self.fp8 is not None:
            return _fp8_gemm(self.dev, self.kernel, x, self.fp8[2 * which], self.fp8[2 * which + 1], offs, counts)
        w = (self.w_gu, self.w_down)[which]
        if self.kernel == "grouped_mm":
            return torch._grouped_mm(x, w.transpose(-2, -1), offs=offs)
        out = x.new_empty(x.shape[0], w.shape[1])
        start = 0
        for e, n in enumerate(counts or ()):
            if n:
                out[start:start + n] = torch.nn.functional.linear(x[start:start + n], w[e])
            start += n
        return out

    def load(self) -> dict[str, float]:
        """How the last step spread its token copies over the experts (reads back to the host)."""
        counts = self.last_counts.float()
        total = float(counts.sum())
        return {"busiest_expert_share": float(counts.max()) / total if total else 0.0,
                "experts_hit": int((counts > 0).sum())}


class MoEDecoderLayer:
    """One decoder layer: RMSNorm, attention (MLA or GQA), RMSNorm, routed MoE + shared experts; residuals."""

    def __init__(self, dev: TorchDevice, spec: ModelSpec, cfg: dict[str, Any], max_pos: int, dtype: Any = None,
                 kernel: str | None = None) -> None:
        if not spec.is_moe:
            raise MoEBenchError(f"model {spec.name!r} has no routed experts")
        self.dev, self.spec = dev, spec
        self.dtype = dtype if dtype is not None else dev.torch.bfloat16
        w = _Weights(dev, self.dtype)
        theta = float(cfg.get("rope_theta") or 10000.0)
        rope_dim = spec.mla_rope_dim if spec.is_mla else spec.head_dim
        rope = Rope(dev, rope_dim, max_pos, self.dtype, theta)
        self.attn: MLA | GQA = MLA(dev, spec, w, rope) if spec.is_mla else GQA(dev, spec, w, rope)
        self.n1, self.n2 = w.norm(spec.hidden), w.norm(spec.hidden)
        self.moe = MoE(dev, spec, cfg, w, kernel or grouped_kernel(dev)[0])

    def _mlp(self, x: Any) -> Any:
        b, t, h = x.shape
        return x + self.moe(rms_norm(self.dev, x, self.n2).reshape(b * t, h)).view(b, t, h)

    def prefill(self, x: Any) -> Any:
        """x (B, T, hidden): T prompt tokens per sequence, causal."""
        return self._mlp(x + self.attn.prefill(rms_norm(self.dev, x, self.n1)))

    def decode(self, x: Any, cache: Any, pos: int) -> Any:
        """x (B, 1, hidden): token `pos` of each sequence, after `pos` cached tokens."""
        return self._mlp(x + self.attn.decode(rms_norm(self.dev, x, self.n1), cache, pos))

    def hidden(self, batch: int, tokens: int) -> Any:
        """Random residual-stream input (the layer's input in a model)."""
        return self.dev.randn(batch, tokens, self.spec.hidden, dtype=self.dtype)

    def cache(self, batch: int, length: int) -> Any:
        """A cache of `length` positions filled with random values (as if a prompt had run)."""
        return self.attn.make_cache(batch, length, self.dtype)

    def fill_cache(self, x: Any, cache: Any) -> None:
        """Write what prefill of x (B, T, hidden) leaves in the cache (tests compare decode with prefill)."""
        xn = rms_norm(self.dev, x, self.n1)
        t = x.shape[1]
        if isinstance(self.attn, MLA):
            cache[:, :t] = self.attn.latent(xn, 0)
        else:
            _q, k, v = self.attn._qkv(xn, 0)
            cache[0][:, :, :t], cache[1][:, :, :t] = k.transpose(1, 2), v.transpose(1, 2)
