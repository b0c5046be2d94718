"""`ModelSpec` from a Hugging Face `config.json`: dense, GQA/MQA, MLA, MoE (+ shared experts).

Counts here are architecture facts (parameters, bytes, KV bytes per token, FLOPs per token); how fast
they run is the business of `perf/`. Norm weights, biases and attention sinks are left out (well under
0.1% of any zoo model).

Parameter conventions (what vendors publish differs, so the tests say which one each figure uses):
- `total_params`: every weight of the main model, embedding table and LM head included; a
  multi-token-prediction (MTP) module is *not* included (see `mtp_params`).
- `active_params`: weights one token touches in GEMMs: attention, dense MLPs, the `top_k` routed and
  all shared experts, routers and the LM head. The embedding table is a row lookup, not a GEMM, so it is
  left out; DeepSeek, Moonshot and OpenAI publish active counts this way, while Qwen and Meta count the
  embedding table as activated too (Qwen3-30B-A3B "3.3B", Llama-4 "17B").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenfab import catalog
from tokenfab.units import precision_bytes


class ModelConfigError(ValueError):
    """A config.json that cannot describe a transformer we can model; names the field."""


def _need(cfg: dict[str, Any], *names: str) -> Any:
    for name in names:
        if cfg.get(name) is not None:
            return cfg[name]
    raise ModelConfigError(f"model config field {names[0]!r} missing or null (a positive integer is required)")


def _positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelConfigError(f"model config field {name!r} = {value!r}: a positive integer is required")
    return value


@dataclass(frozen=True)
class LayerGroup:
    """`count` decoder layers of one kind (MLP kind x attention span), in order of first appearance.

    A dense model has one group, dense-first MoE (DeepSeek) two; interleaved layouts (Llama-4 Maverick's
    dense/MoE alternation, gpt-oss's sliding/full alternation) are tallied per kind, not kept in order.
    """

    count: int
    moe: bool
    window: int | None = None   # attention span in tokens (sliding window or local chunk), None = full


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of a decoder-only transformer, all counts in elements (not bytes)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int            # query/key head dim (incl. rope part for MLA)
    v_head_dim: int
    vocab: int
    intermediate: int        # dense MLP width
    gated_mlp: bool          # SwiGLU-style: 3 matrices instead of 2
    experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    shared_experts: int = 0
    mla_kv_rank: int = 0     # MLA latent KV width (0 = not MLA)
    mla_rope_dim: int = 0
    mla_q_rank: int = 0
    tied_embeddings: bool = False
    layer_groups: tuple[LayerGroup, ...] = ()
    shared_expert_intermediate: int = 0   # width of each shared expert, 0 = same as a routed expert
    mtp_layers: int = 0      # multi-token-prediction modules shipped with the model (DeepSeek-V3/R1: 1)

    # ----- per-layer parameter counts -----
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def moe_layer_count(self) -> int:
        """Decoder layers whose MLP is routed experts (the rest are dense)."""
        return sum(g.count for g in self.layer_groups if g.moe)

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_rank > 0

    @property
    def attn_params(self) -> int:
        """Attention projection weights of one layer."""
        if self.is_mla:
            nope = self.head_dim - self.mla_rope_dim
            q = (self.hidden * self.mla_q_rank + self.mla_q_rank * self.heads * self.head_dim
                 if self.mla_q_rank else self.hidden * self.heads * self.head_dim)
            kv_down = self.hidden * (self.mla_kv_rank + self.mla_rope_dim)
            kv_up = self.mla_kv_rank * self.heads * (nope + self.v_head_dim)
            return q + kv_down + kv_up + self.heads * self.v_head_dim * self.hidden
        qkv = self.hidden * (self.heads * self.head_dim + 2 * self.kv_heads * self.head_dim)
        return qkv + self.heads * self.v_head_dim * self.hidden

    def _mlp_params(self, width: int) -> int:
        return (3 if self.gated_mlp else 2) * self.hidden * width

    @property
    def dense_mlp_params(self) -> int:
        return self._mlp_params(self.intermediate)

    @property
    def expert_params(self) -> int:
        """One routed expert."""
        return self._mlp_params(self.expert_intermediate)

    @property
    def shared_expert_width(self) -> int:
        """Intermediate width of one shared expert (Qwen2-MoE gives its own; DeepSeek/Llama-4 reuse the expert's)."""
        return self.shared_expert_intermediate or self.expert_intermediate

    @property
    def shared_expert_params(self) -> int:
        """All shared experts of one MoE layer (always active)."""
        return self.shared_experts * self._mlp_params(self.shared_expert_width)

    @property
    def router_params(self) -> int:
        return self.hidden * self.experts

    def layer_params(self, moe: bool, active: bool = False) -> int:
        if not moe:
            return self.attn_params + self.dense_mlp_params
        routed = (self.top_k if active else self.experts) * self.expert_params
        return self.attn_params + routed + self.shared_expert_params + self.router_params

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def total_params(self) -> int:
        body = sum(g.count * self.layer_params(g.moe) for g in self.layer_groups)
        return body + self.embedding_params

    @property
    def active_params(self) -> int:
        """Parameters touched per token (embedding table lookup excluded, LM head included)."""
        body = sum(g.count * self.layer_params(g.moe, active=True) for g in self.layer_groups)
        return body + self.vocab * self.hidden

    @property
    def mtp_params(self) -> int:
        """Weights of the multi-token-prediction modules, kept out of `total_params` and `active_params`.

        Engines load the MTP module as a separate draft model for speculative decoding (SGLang/vLLM
        `--speculative-algorithm` NEXTN/EAGLE/MTP), so the main model's counts exclude it, as DeepSeek's
        published 671B does (the 685B checkpoint is 671B + 14B of MTP). Per DeepSeek-V3 (arXiv 2412.19437,
        section 2.2) module k is one Transformer block (an MoE decoder layer here) plus a projection
        M_k of 2*hidden x hidden that merges the previous depth's hidden state with the next token's
        embedding; embedding and output head are shared with the main model and not counted again (the
        checkpoint stores copies of both, another 2 * vocab * hidden, which an engine may load or share).
        Deployment code adds these weights when it serves with MTP drafts.
        """
        per_module = self.layer_params(self.is_moe) + 2 * self.hidden * self.hidden
        return self.mtp_layers * per_module

    def weight_bytes(self, precision: str) -> float:
        return self.total_params * precision_bytes(precision)

    # ----- KV cache -----
    @property
    def kv_elems_per_token_layer(self) -> int:
        """Cached elements per token per layer: K and V heads, or MLA's compressed latent + rope key."""
        if self.is_mla:
            return self.mla_kv_rank + self.mla_rope_dim
        return 2 * self.kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_precision: str) -> float:
        return self.layers * self.kv_elems_per_token_layer * precision_bytes(kv_precision)

    # ----- FLOPs -----
    @property
    def attn_score_dim(self) -> int:
        """Per-head dot-product widths of QK^T and PV (MLA absorbed: latent + rope, latent)."""
        return self.head_dim

    def attn_flops_per_pair(self) -> float:
        """FLOPs of one (query token, key token) pair summed over heads of one layer: QK^T + PV, as a decode
        step runs them (MLA weight-absorbed: every head attends in the shared latent space)."""
        if self.is_mla:
            return 2.0 * self.heads * (2 * self.mla_kv_rank + self.mla_rope_dim)
        return 2.0 * self.heads * (self.head_dim + self.v_head_dim)

    def attn_flops_per_pair_prefill(self) -> float:
        """The same for prompt tokens. MLA prefill runs the expanded form (K and V decompressed per head,
        192-wide QK and 128-wide PV for DeepSeek-V3), 3.4x fewer FLOPs per pair than the absorbed form: many
        queries share each decompressed key (DeepSeek-V3 report, arXiv 2412.19437 §2.1.1; FlashMLA's
        prefill kernels)."""
        return 2.0 * self.heads * (self.head_dim + self.v_head_dim)

    def flops_per_token(self, context: int) -> float:
        """Forward FLOPs of one token attending to `context` previous tokens."""
        linear = 2.0 * self.active_params
        attn = 0.0
        for g in self.layer_groups:
            span = min(context, g.window) if g.window else context
            attn += g.count * self.attn_flops_per_pair() * span
        return linear + attn


def _moe_layer_flags(cfg: dict[str, Any], layers: int, experts: int) -> list[bool]:
    """Which decoder layers carry the routed-expert MLP, by each family's own rule.

    - DeepSeek-V2/V3, Kimi-K2: layer i >= first_k_dense_replace with i % moe_layer_freq == 0.
    - Qwen2/Qwen3-MoE: layer i not in mlp_only_layers with (i + 1) % decoder_sparse_step == 0.
    - Llama-4: layer i in moe_layers, which transformers' Llama4TextConfig defaults to
      range(interleave_moe_layer_step - 1, layers, interleave_moe_layer_step) (Scout step 1: every
      layer; Maverick step 2: the odd layers).
    - otherwise (Mixtral, gpt-oss): every layer.
    """
    if not experts:
        return [False] * layers
    flags = [True] * layers
    if cfg.get("moe_layers") is not None:
        chosen = {int(i) for i in cfg["moe_layers"]}
        flags = [i in chosen for i in range(layers)]
    elif cfg.get("interleave_moe_layer_step") is not None:
        step = _positive("interleave_moe_layer_step", cfg["interleave_moe_layer_step"])
        flags = [i % step == step - 1 for i in range(layers)]
    dense_first = cfg.get("first_k_dense_replace") or 0
    if not isinstance(dense_first, int) or isinstance(dense_first, bool) or not 0 <= dense_first <= layers:
        raise ModelConfigError(f"model config field 'first_k_dense_replace' = {dense_first!r}: allowed 0 to "
                               f"num_hidden_layers ({layers})")
    freq = _positive("moe_layer_freq", cfg.get("moe_layer_freq") or 1)
    sparse_step = _positive("decoder_sparse_step", cfg.get("decoder_sparse_step") or 1)
    mlp_only = {int(i) for i in cfg.get("mlp_only_layers") or ()}
    return [f and i >= dense_first and i % freq == 0 and (i + 1) % sparse_step == 0 and i not in mlp_only
            for i, f in enumerate(flags)]


def _layer_windows(cfg: dict[str, Any], layers: int) -> list[int | None]:
    """Attention span per decoder layer: a sliding window, a local chunk, or None (full attention).

    - `layer_types` + `sliding_window` (gpt-oss, Gemma-style): "sliding_attention" layers get the window.
    - Llama-4 `attention_chunk_size`: the RoPE layers (no_rope_layers[i] == 1, default every layer but
      each `no_rope_layer_interval`-th, 4) attend within their local chunk, the NoPE layers globally
      ("iRoPE"). A chunk is modelled as a window of `attention_chunk_size` tokens: exact below one chunk,
      an upper bound beyond (a token sees (position mod chunk) + 1 keys, on average half a chunk).
    """
    layer_types = cfg.get("layer_types")
    window = cfg.get("sliding_window")
    chunk = cfg.get("attention_chunk_size")
    if chunk:
        chunk = _positive("attention_chunk_size", chunk)
        if layer_types and len(layer_types) == layers and "chunked_attention" in layer_types:
            return [chunk if t == "chunked_attention" else None for t in layer_types]
        rope = cfg.get("no_rope_layers")
        if not rope:
            interval = _positive("no_rope_layer_interval", cfg.get("no_rope_layer_interval") or 4)
            rope = [int((i + 1) % interval != 0) for i in range(layers)]
        if len(rope) != layers:
            raise ModelConfigError(f"model config field 'no_rope_layers' has {len(rope)} entries: "
                                   f"one per layer ({layers}) is required")
        return [chunk if r else None for r in rope]
    if layer_types and window:
        slide = [t == "sliding_attention" for t in layer_types]
        if len(slide) != layers:  # not one entry per layer: spread the sliding fraction evenly
            n_slide = round(layers * sum(slide) / len(slide))
            slide = [i < n_slide for i in range(layers)]
        return [int(window) if s else None for s in slide]
    return [None] * layers


def _layer_groups(cfg: dict[str, Any], layers: int, experts: int) -> tuple[LayerGroup, ...]:
    """Tally the decoder layers by (MoE or dense, attention span), in order of first appearance."""
    counts: dict[tuple[bool, int | None], int] = {}
    for moe, window in zip(_moe_layer_flags(cfg, layers, experts), _layer_windows(cfg, layers), strict=True):
        counts[(moe, window)] = counts.get((moe, window), 0) + 1
    return tuple(LayerGroup(n, moe, window) for (moe, window), n in counts.items())


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The language model's config: a multimodal wrapper's `text_config` (Llama-4, Kimi-K2.5) over its top level."""
    text = cfg.get("text_config")
    if not isinstance(text, dict):
        return cfg
    top = {k: v for k, v in cfg.items() if k not in ("text_config", "vision_config", "audio_config")}
    return {**top, **text}


def model_from_config(cfg: dict[str, Any], name: str = "custom") -> ModelSpec:
    """Read a HF config.json dict (Llama 2/3/4, Mistral/Mixtral, Qwen 2/3 (+MoE), DeepSeek-V3/R1, Kimi-K2,
    GPT-J, Falcon, GPT-2/3, gpt-oss)."""
    if not isinstance(cfg, dict):
        raise ModelConfigError("model config must be a JSON object")
    cfg = _text_config(cfg)
    mtype = str(cfg.get("model_type", "")).lower()
    hidden = _positive("hidden_size", _need(cfg, "hidden_size", "n_embd", "d_model"))
    layers = _positive("num_hidden_layers", _need(cfg, "num_hidden_layers", "n_layer", "num_layers"))
    heads = _positive("num_attention_heads", _need(cfg, "num_attention_heads", "n_head"))
    kv_heads = cfg.get("num_key_value_heads", cfg.get("num_kv_heads"))
    if kv_heads is None:
        kv_heads = 1 if cfg.get("multi_query") and not cfg.get("new_decoder_architecture") else heads
    kv_heads = _positive("num_key_value_heads", kv_heads)
    if heads % kv_heads:
        raise ModelConfigError(
            f"model config field 'num_key_value_heads' = {kv_heads} must divide num_attention_heads = {heads}")
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    vocab = _positive("vocab_size", _need(cfg, "vocab_size"))
    gated = mtype not in ("gptj", "falcon", "gpt2", "gpt3", "gpt_neox", "opt", "bloom")
    inter = cfg.get("intermediate_size") or cfg.get("ffn_hidden_size") or cfg.get("n_inner") or 4 * hidden
    inter = _positive("intermediate_size", inter)
    experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 0)
    top_k = int(cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or 0)
    if experts and not 0 < top_k <= experts:
        raise ModelConfigError(f"model config field 'num_experts_per_tok' = {top_k}: must be 1..{experts}")
    expert_inter = int(cfg.get("moe_intermediate_size") or inter) if experts else 0
    dense_inter = inter
    if cfg.get("intermediate_size_mlp"):  # Llama-4: intermediate_size is the expert's, this the dense layers'
        dense_inter = _positive("intermediate_size_mlp", cfg["intermediate_size_mlp"])
    shared, shared_inter = _shared_experts(cfg, mtype, experts)
    mla_rank = int(cfg.get("kv_lora_rank") or 0)
    v_head_dim = int(cfg.get("v_head_dim") or head_dim)
    rope_dim = int(cfg.get("qk_rope_head_dim") or 0)
    if mla_rank:
        head_dim = int(cfg.get("qk_nope_head_dim", 128)) + rope_dim
    mtp = int(cfg.get("num_nextn_predict_layers") or 0)
    if mtp < 0:
        raise ModelConfigError(f"model config field 'num_nextn_predict_layers' = {mtp}: must be 0 or more")
    return ModelSpec(
        name=name,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        v_head_dim=v_head_dim,
        vocab=vocab,
        intermediate=dense_inter,
        gated_mlp=gated,
        experts=experts,
        top_k=top_k,
        expert_intermediate=expert_inter,
        shared_experts=shared,
        mla_kv_rank=mla_rank,
        mla_rope_dim=rope_dim,
        mla_q_rank=int(cfg.get("q_lora_rank") or 0),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        layer_groups=_layer_groups(cfg, layers, experts),
        shared_expert_intermediate=shared_inter,
        mtp_layers=mtp,
    )


def _shared_experts(cfg: dict[str, Any], mtype: str, experts: int) -> tuple[int, int]:
    """(shared experts per MoE layer, width of each; 0 = the routed expert's width).

    - DeepSeek/Kimi: `n_shared_experts` of the expert width.
    - Qwen2-MoE: one shared expert of `shared_expert_intermediate_size` (its scalar gate is not counted).
    - Llama-4: one shared expert in every MoE layer, of the expert width; transformers' Llama4TextMoe
      builds it unconditionally (`self.shared_expert = Llama4TextMLP(config)`), the config has no field.
    - Qwen3-MoE, Mixtral, gpt-oss: none.
    """
    if not experts:
        return 0, 0
    width = int(cfg.get("shared_expert_intermediate_size") or cfg.get("moe_shared_expert_intermediate_size") or 0)
    count = int(cfg.get("n_shared_experts") or cfg.get("num_shared_experts") or 0)
    if not count and (width or mtype in ("llama4", "llama4_text")):
        count = 1
    return count, width if count else 0


def load_model(model: str) -> ModelSpec:
    """A zoo model by id, a config.json or model folder by path, or a Hugging Face id in the local cache."""
    return model_from_config(catalog.model_config(model), name=model_name(model))


def model_name(model: str) -> str:
    """What answers call a model: its zoo id, else its folder's or file's name (`.../Llama-3.1-8B/config.json`
    and `meta-llama/Llama-3.1-8B` are both `Llama-3.1-8B`)."""
    if model in catalog.model_ids():
        return model
    parts = [p for p in model.replace("\\", "/").split("/") if p]
    if parts and parts[-1] == "config.json" and len(parts) > 1:
        return parts[-2]
    return parts[-1].removesuffix(".json") if parts else model
