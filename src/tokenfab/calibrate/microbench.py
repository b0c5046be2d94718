"""Microbenchmarks of one device through PyTorch: GEMM grid, memory streaming, attention, launch overhead.

GEMM and memcopy results come out as rows of the `predict` query schema (scenarios `gemm` and
`memcopy`), so the same fit that reads published measurements reads these. Attention and overhead
have no query scenario of their own; they set the starting values of the parameters they measure
(`attn_eff`, `kv_mem_eff`, `t_kernel`), which the measured step times then refine.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

from tokenfab.calibrate.torchenv import TorchDevice
from tokenfab.model import ModelSpec

# GEMM rows M per device kind: decode-sized to prefill-sized. N x K come from the model's own weights.
GEMM_M = {"cuda": (1, 16, 64, 256, 1024, 4096, 16384), "cpu": (1, 16, 64, 256)}
# one large square GEMM per precision probes the best the device reaches (a CPU's "peak")
PEAK_PROBE = {"cuda": 8192, "cpu": 1024}
MEMCOPY_BYTES = {"cuda": 2 * 2**30, "cpu": 256 * 2**20}
ATTN_PREFILL = {"cuda": ((1, 2048), (1, 8192), (8, 2048)), "cpu": ((1, 128), (2, 512))}
ATTN_DECODE = {"cuda": ((1, 8192), (16, 2048), (64, 2048), (256, 512)), "cpu": ((1, 512), (8, 512))}


@dataclass
class Microbench:
    """What the microbenchmarks measured: query rows (gemm, memcopy) plus attention and overhead figures."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    kernel_s: float = 0.0                    # one tiny kernel launched and waited for from the host
    memcopy_bw: float = 0.0                  # bytes read + written per second, streaming copy
    best_flops: dict[str, float] = field(default_factory=dict)   # best GEMM FLOP/s per precision
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _dtype(dev: TorchDevice, precision: str) -> Any:
    return {"bf16": dev.torch.bfloat16, "fp16": dev.torch.float16, "fp32": dev.torch.float32}[precision]


def fp8_available(dev: TorchDevice) -> bool:
    """FP8 tensor-core GEMMs: an NVIDIA GPU of compute capability 8.9+ and a torch that has `_scaled_mm`."""
    torch = dev.torch
    if not dev.is_cuda or getattr(torch.version, "hip", None) or not hasattr(torch, "float8_e4m3fn"):
        return False
    return torch.cuda.get_device_capability(dev.device) >= (8, 9) and hasattr(torch, "_scaled_mm")


def gemm_shapes(spec: ModelSpec, kind: str) -> list[tuple[int, int, int]]:
    """(M, N, K) of the model's weight GEMMs over decode- to prefill-sized M, plus one peak probe."""
    qkv = (spec.heads + 2 * spec.kv_heads) * spec.head_dim
    nk = [(qkv, spec.hidden), (spec.hidden, spec.heads * spec.head_dim), (2 * spec.intermediate, spec.hidden),
          (spec.hidden, spec.intermediate)]
    shapes = [(m, n, k) for m in GEMM_M[kind] for n, k in nk]
    p = PEAK_PROBE[kind]
    return [*shapes, (p, p, p)]


def _gemm_fn(dev: TorchDevice, precision: str, m: int, n: int, k: int) -> Any:
    torch = dev.torch
    if precision == "fp8":
        a = dev.randn(m, k).to(torch.float8_e4m3fn)
        w = dev.randn(n, k).to(torch.float8_e4m3fn)
        one = torch.ones((), device=dev.device, dtype=torch.float32)

        def run() -> Any:
            out = torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            return out[0] if isinstance(out, tuple) else out  # torch < 2.4 also returned amax
        return run
    dtype = _dtype(dev, precision)
    a = dev.randn(m, k, dtype=dtype)
    w = dev.randn(n, k, dtype=dtype, scale=0.05)
    return lambda: torch.nn.functional.linear(a, w)


def _row(hardware: str, engine: str, qid: str, scenario: str, metric: str, value: float, precision: str | None,
         shape: dict[str, Any] | None, note: str) -> dict[str, Any]:
    return {"id": qid, "source_id": "tokenfab-calibrate", "url": None, "model": None, "hardware": hardware,
            "devices": 1, "tp": None, "pp": None, "ep": None, "replicas": None, "precision": precision,
            "kv_precision": None, "engine": engine, "scenario": scenario, "input_len": None, "output_len": None,
            "input_len_exact": None, "batch": None, "concurrency": None, "rate": None, "max_batch": None,
            "shape": shape, "metric": metric, "value": value, "quality": "exact", "note": note}


def run_gemms(dev: TorchDevice, spec: ModelSpec, precisions: tuple[str, ...], hardware: str, engine: str,
              out: Microbench) -> None:
    for precision in precisions:
        for m, n, k in gemm_shapes(spec, dev.kind):
            if precision == "fp8" and (m % 16 or n % 16 or k % 16):
                continue  # FP8 GEMMs need dimensions in multiples of 16
            try:
                seconds = dev.time(_gemm_fn(dev, precision, m, n, k), min_repeat_s=0.005)
            except (RuntimeError, TypeError) as err:
                out.skipped.append(f"gemm {precision} {m}x{n}x{k}: {str(err).splitlines()[0]}")
                continue
            flops = 2.0 * m * n * k / seconds
            out.best_flops[precision] = max(out.best_flops.get(precision, 0.0), flops)
            out.rows.append(_row(hardware, engine, f"{hardware}-gemm-{precision}-{m}x{n}x{k}", "gemm", "gemm_tflops",
                                 flops / 1e12, precision, {"m": m, "n": n, "k": k},
                                 f"torch {'_scaled_mm' if precision == 'fp8' else 'linear'}, median of repeats"))
    _free(dev)


def run_memcopy(dev: TorchDevice, hardware: str, engine: str, out: Microbench) -> None:
    nbytes = MEMCOPY_BYTES[dev.kind]
    src = dev.randn(nbytes // 2, dtype=dev.torch.bfloat16)
    dst = dev.torch.empty_like(src)
    seconds = dev.time(lambda: dst.copy_(src), min_repeat_s=0.02)  # both freed on return
    out.memcopy_bw = 2.0 * nbytes / seconds
    out.rows.append(_row(hardware, engine, f"{hardware}-memcopy", "memcopy", "memcopy_tbps", out.memcopy_bw / 1e12,
                         None, {"kernel": "copy", "element_bytes": 2},
                         f"tensor.copy_ of {nbytes / 2**20:.0f} MiB, bytes read + written, median of repeats"))


# Whether grouped-KV attention runs natively (`enable_gqa` on a fused kernel) per device kind; decided on
# the first (warm-up) call and kept, so a CUDA graph captures the same path that was warmed up.
GQA_NATIVE: dict[str, bool] = {}


def _fused_kernels_only(dev: TorchDevice) -> Any:
    """On a GPU, forbid SDPA's math fallback (it would materialise the L x L scores): fail instead."""
    if not dev.is_cuda:
        return contextlib.nullcontext()
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        return contextlib.nullcontext()
    names = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")
    return sdpa_kernel([getattr(SDPBackend, n) for n in names if hasattr(SDPBackend, n)])


def _sdpa(dev: TorchDevice, q: Any, k: Any, v: Any, causal: bool) -> Any:
    """Attention with grouped KV heads: natively where the torch version and kernels allow it, else with K/V
    repeated per query head (a copy, small next to a compute-bound prefill)."""
    f = dev.torch.nn.functional.scaled_dot_product_attention
    if q.shape[1] == k.shape[1]:
        return f(q, k, v, is_causal=causal)
    if GQA_NATIVE.get(dev.kind, True):
        try:
            with _fused_kernels_only(dev):
                out = f(q, k, v, is_causal=causal, enable_gqa=True)
            GQA_NATIVE[dev.kind] = True
            return out
        except (TypeError, RuntimeError):  # torch < 2.5, or no fused kernel takes these inputs
            GQA_NATIVE[dev.kind] = False
    group = q.shape[1] // k.shape[1]
    return f(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1), is_causal=causal)


def run_attention(dev: TorchDevice, spec: ModelSpec, out: Microbench) -> None:
    """Prefill (causal flash attention, compute) and decode (one query per KV head group, KV streaming)."""
    bf16 = dev.torch.bfloat16
    h, kvh, d = spec.heads, spec.kv_heads, spec.head_dim
    for b, n in ATTN_PREFILL[dev.kind]:
        q, k, v = dev.randn(b, h, n, d, dtype=bf16), dev.randn(b, kvh, n, d, dtype=bf16), dev.randn(
            b, kvh, n, d, dtype=bf16)
        seconds = dev.time(lambda q=q, k=k, v=v: _sdpa(dev, q, k, v, True), min_repeat_s=0.01)
        flops = spec.attn_flops_per_pair() * b * n * (n + 1) / 2
        out.attention.append({"phase": "prefill", "batch": b, "len": n, "seconds": seconds,
                              "flops_per_s": flops / seconds})
    group = h // kvh
    for b, n in ATTN_DECODE[dev.kind]:
        # decode: the group of query heads sharing a KV head rides as the query length (no KV copy)
        q = dev.randn(b, kvh, group, d, dtype=bf16)
        k, v = dev.randn(b, kvh, n, d, dtype=bf16), dev.randn(b, kvh, n, d, dtype=bf16)
        seconds = dev.time(lambda q=q, k=k, v=v: _sdpa(dev, q, k, v, False), min_repeat_s=0.01)
        nbytes = 2.0 * b * kvh * n * d * 2
        out.attention.append({"phase": "decode", "batch": b, "len": n, "seconds": seconds,
                              "bytes_per_s": nbytes / seconds})
    _free(dev)


def run_overhead(dev: TorchDevice, out: Microbench) -> None:
    """One tiny kernel launched and waited for from the host: the floor of any stand-alone timing."""
    x = dev.randn(16)

    def launch_and_wait() -> None:
        x.add_(1e-3)
        dev.sync()
    out.kernel_s = dev.time(launch_and_wait, repeats=7, min_repeat_s=0.005)


def run_microbench(dev: TorchDevice, spec: ModelSpec, hardware: str, engine: str,
                   precisions: tuple[str, ...]) -> Microbench:
    """Every microbenchmark, in the order that frees memory between them."""
    out = Microbench()
    with dev.torch.inference_mode():
        run_overhead(dev, out)
        run_memcopy(dev, hardware, engine, out)
        run_gemms(dev, spec, precisions, hardware, engine, out)
        run_attention(dev, spec, out)
    return out


def _free(dev: TorchDevice) -> None:
    if dev.is_cuda:
        dev.torch.cuda.empty_cache()
