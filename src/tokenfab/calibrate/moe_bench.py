"""Measured step times of one MoE decoder layer with random weights: DeepSeek-V3 (MLA + MoE), Qwen3/Mixtral (GQA + MoE).

Why: the dense step benchmark (`model_bench`) says nothing about the two things MoE serving hinges on, routed
expert GEMMs and MLA attention. One layer is enough to time them, and one layer of even DeepSeek-V3 fits a GPU.

The layer is built from a shipped config (scaled down for CPU tests, or with fewer experts where a GPU lacks the
memory; `layer_config` says which), weights ~N(0, 0.02), bf16:
- MLA (DeepSeek-V3): decode in the absorbed form, as FlashMLA serves it: queries projected into the latent
  space (kv_lora_rank), attention over the cached latent + rotary key (576 values per token), output through the
  absorbed value projection. Prefill in the expanded form: latent up-projected to per-head K/V, causal SDPA.
- GQA (Qwen3-MoE, Mixtral): fused QKV, rotary, SDPA over a K/V cache.
- MoE: router (softmax; sigmoid for DeepSeek) top-k, renormalised; token copies sorted by expert and run through
  grouped GEMMs (`torch._grouped_mm`; `torch._scaled_grouped_mm` with fp8 e4m3 expert weights), else a loop
  over the experts that received tokens; shared experts as a dense MLP. Routing is `uniform` (random router) or
  `skewed` (a Zipf bias -s ln(rank) added to the router logits).
Each grid point becomes a row of the `predict` query schema, scenario `layer`, metric `layer_ms`.
On a GPU each step is captured in a CUDA graph where the kernels allow it; on a CPU it runs eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tokenfab import catalog
from tokenfab.calibrate.model_bench import as_graph
from tokenfab.calibrate.moe_layers import (
    MoEBenchError,
    MoEDecoderLayer,
)
from tokenfab.calibrate.power import PowerMeter, PowerReading
from tokenfab.model import ModelSpec, model_from_config

EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts")

# CPU tests: the shipped architecture at toy width (a few experts, small hidden), fast in float32 or bf16.
TINY_MLA = {"hidden_size": 128, "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 64,
            "kv_lora_rank": 64, "qk_rope_head_dim": 16, "qk_nope_head_dim": 32, "v_head_dim": 32,
            "moe_intermediate_size": 64, "intermediate_size": 256, "num_experts_per_tok": 2, "vocab_size": 1024}
TINY_GQA = {"hidden_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
            "moe_intermediate_size": 64, "intermediate_size": 64, "num_experts_per_tok": 2, "vocab_size": 1024}
TINY_EXPERTS = 8



def layer_config(model_id: str, tiny: bool = False, experts: int | None = None) -> tuple[dict[str, Any], str]:
    """(HF config, name) of the layer to build: the shipped config, scaled down when `tiny`, with `experts`
    routed experts when given (top-k capped to it). The name is the model id when nothing was changed."""
    cfg = dict(catalog.model_config(model_id))
    key = next((k for k in EXPERT_KEYS if cfg.get(k)), None)
    if key is None:
        raise MoEBenchError(f"model {model_id!r} has no routed experts: only MoE models are benchmarked here")
    name = model_id
    if tiny:
        cfg.update(TINY_MLA if cfg.get("kv_lora_rank") else TINY_GQA)
        cfg[key] = min(int(cfg[key]), TINY_EXPERTS)
        name += "-tiny"
    if experts and experts != cfg[key]:
        cfg[key] = experts
        name += f"-e{experts}"
    cfg["num_experts_per_tok"] = min(int(cfg["num_experts_per_tok"]), int(cfg[key]))
    if name != model_id:
        cfg["_note"] = f"{model_id} as benchmarked by tokenfab.calibrate.moe_bench ({name}); see _source"
    return cfg, name


def layer_spec(cfg: dict[str, Any], name: str) -> ModelSpec:
    spec = model_from_config(cfg, name)
    if not spec.is_moe:
        raise MoEBenchError(f"model {name!r} has no routed experts")
    return spec


# ----- the grid -----
@dataclass(frozen=True)
class LayerGrid:
    """Decode over batch x context (capped at `max_decode_tokens` cached tokens), prefill chunks at batch 1."""

    decode_batches: tuple[int, ...]
    decode_lens: tuple[int, ...]
    prefill_lens: tuple[int, ...]
    max_decode_tokens: int

    def points(self) -> list[tuple[str, int, int]]:
        dec = [("decode", b, n) for b in self.decode_batches for n in self.decode_lens
               if b * n <= self.max_decode_tokens]
        return dec + [("prefill", 1, n) for n in self.prefill_lens]


GPU_GRID = LayerGrid((1, 8, 32, 128, 512), (512, 2048, 8192), (512, 2048, 8192), 512 * 8192)
CPU_GRID = LayerGrid((1, 4), (32, 128), (32, 128), 4096)


@dataclass
class LayerTime:
    phase: str
    batch: int
    length: int            # decode: tokens already cached; prefill: chunk tokens
    seconds: float
    mode: str              # cudagraph or eager
    precision: str         # bf16, or fp8 (routed-expert weights)
    kernel: str
    routing: str
    zipf_s: float
    load: dict[str, float]
    power: PowerReading | None = None


def time_point(layer: MoEDecoderLayer, phase: str, batch: int, length: int, graphable: bool, precision: str,
               meter: PowerMeter | None = None, power_s: float = 0.5) -> LayerTime:
    """Time one grid point (warm-up, median of repeats), then run it for `power_s` under the power meter."""
    dev = layer.dev
    with dev.torch.inference_mode():
        if phase == "decode":
            x, cache = layer.hidden(batch, 1), layer.cache(batch, length + 1)

            def fn() -> Any:
                return layer.decode(x, cache, length)
        else:
            x = layer.hidden(batch, length)

            def fn() -> Any:
                return layer.prefill(x)
        step, mode = as_graph(dev, fn) if graphable and dev.is_cuda else (fn, "eager")
        seconds = dev.time(step, warmup=2, repeats=5, min_repeat_s=0.02 if dev.is_cuda else 0.003)
        power = meter.run(step, power_s, seconds, dev.sync) if meter is not None and meter.available else None
        dev.sync()
        load = layer.moe.load()
    layer.moe.last_counts = None
    del step, fn
    if dev.is_cuda:
        dev.torch.cuda.empty_cache()
    return LayerTime(phase, batch, length, seconds, mode, precision, layer.moe.kernel, layer.moe.routing,
                     layer.moe.zipf_s, load, power)


def layer_row(lt: LayerTime, hardware: str, name: str, model_ref: str, engine: str, arch: str) -> dict[str, Any]:
    """A measured layer step as a `layer` query row (power figures, when measured, as extra keys)."""
    decode = lt.phase == "decode"
    shape = {"phase": "decode", "kv_len": lt.length} if decode else {"phase": "prefill", "seq_len": lt.length}
    what = (f"one decode step of {lt.batch} sequences after {lt.length} cached tokens" if decode else
            f"one prefill step over a {lt.length}-token chunk")
    weights = ("routed-expert weights fp8 e4m3 with rowwise scales, the rest bf16" if lt.precision == "fp8"
               else "bf16 weights")
    skew = f"skewed (zipf s={lt.zipf_s:g})" if lt.routing == "skewed" else "uniform"
    row: dict[str, Any] = {
        "id": f"{hardware}-{name}-layer-{lt.phase}-b{lt.batch}-l{lt.length}-{lt.precision}-{lt.routing}",
        "source_id": "tokenfab-moe-bench", "url": None, "model": model_ref, "hardware": hardware,
        "devices": 1, "tp": 1, "pp": 1, "ep": 1, "replicas": 1, "precision": lt.precision, "kv_precision": "bf16",
        "engine": f"{engine}-{lt.mode}", "scenario": "layer", "input_len": None, "output_len": None,
        "batch": lt.batch, "concurrency": None, "rate": None, "max_batch": None, "shape": shape,
        "metric": "layer_ms", "value": lt.seconds * 1e3, "quality": "exact",
        "note": (f"{what}, one {arch} layer of {name}; routing {skew}, busiest expert "
                 f"{lt.load['busiest_expert_share']:.1%} of token copies, {lt.load['experts_hit']} experts hit; "
                 f"experts kernel {lt.kernel}, {weights}; random weights, {lt.mode}, median of repeats"),
        "routing": lt.routing, "zipf_s": lt.zipf_s, "kernel": lt.kernel, **lt.load,
    }
    if lt.power is not None:
        p = lt.power
        row.update({"avg_power_w": p.avg_power_w, "joules_per_step": p.joules_per_step, "power_method": p.method,
                    "power_samples": p.samples, "sm_clock_mhz": p.sm_clock_mhz, "mem_clock_mhz": p.mem_clock_mhz})
    return row


def arch_name(spec: ModelSpec) -> str:
    return "MLA + MoE" if spec.is_mla else "GQA + MoE"


def layer_bytes(spec: ModelSpec, grid: LayerGrid, dtype_bytes: int = 2) -> dict[str, float]:
    """Device memory one layer needs at the grid's largest points: weights, cache, activations (rough)."""
    weights = spec.layer_params(moe=True) * dtype_bytes
    kv = grid.max_decode_tokens * spec.kv_elems_per_token_layer * dtype_bytes if grid.decode_batches else 0
    tokens = max([*grid.prefill_lens, *grid.decode_batches, 1])
    copies = tokens * spec.top_k
    act = copies * (2 * spec.hidden + 3 * spec.expert_intermediate) * dtype_bytes * 3
    attn = tokens * spec.heads * (spec.head_dim * 2 + spec.v_head_dim) * dtype_bytes * 3
    return {"weights": float(weights), "cache": float(kv), "activations": float(act + attn)}


def fit_experts(spec: ModelSpec, grid: LayerGrid, free_bytes: float, share: float = 0.8) -> int:
    """The most experts (the model's own count, else halved) whose layer fits `share` of the free memory."""
    experts = spec.experts
    while experts > spec.top_k:
        need = layer_bytes(replace(spec, experts=experts), grid)
        if sum(need.values()) <= share * free_bytes:
            break
        experts //= 2
    return max(experts, spec.top_k)


def run_grid(layer: MoEDecoderLayer, grid: LayerGrid, graphable: bool, precision: str,
             meter: PowerMeter | None = None, power_s: float = 0.5,
             keep_going: Callable[[], bool] = lambda: True,
             progress: Callable[[str], None] | None = None) -> tuple[list[LayerTime], list[str]]:
    """Every grid point at the layer's current routing until `keep_going` says stop; a point that fails (out of
    memory, a kernel that refuses the shapes) is left out and named in the second list, the rest go on."""
    out, failed = [], []
    for phase, b, n in grid.points():
        if not keep_going():
            break
        what = f"{layer.spec.name} {precision} {layer.moe.routing}: {phase} batch {b} length {n}"
        if progress:
            progress(what)
        try:
            out.append(time_point(layer, phase, b, n, graphable, precision, meter, power_s))
            continue
        except (RuntimeError, ValueError) as err:   # torch.cuda.OutOfMemoryError is a RuntimeError
            failed.append(f"{what}: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}")
        # out here, the error's traceback (and the point's tensors it holds) is gone: the memory can be returned
        layer.moe.last_counts = None
        if layer.dev.is_cuda:
            layer.dev.torch.cuda.empty_cache()
    return out, failed
