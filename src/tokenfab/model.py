"""`ModelSpec` from a Hugging Face `config.json`: dense, GQA/MQA, MLA, MoE (+ shared experts).

Counts here are architecture facts (parameters, bytes, KV bytes per token, FLOPs per token); how fast
they run is the business of `perf/`.
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
    """Consecutive identical decoder layers (a model has one group, or two for dense-first MoE)."""

    count: int
    moe: bool
    window: int | None = None   # sliding-window attention span in tokens, None = full attention


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

    # ----- per-layer parameter counts -----
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

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
    def shared_expert_params(self) -> int:
        return self.shared_experts * self._mlp_params(self.expert_intermediate)

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
        """FLOPs of one (query token, key token) pair summed over heads of one layer: QK^T + PV."""
        if self.is_mla:  # weight-absorbed MLA attends in the latent space
            return 2.0 * self.heads * (2 * self.mla_kv_rank + self.mla_rope_dim)
        return 2.0 * self.heads * (self.head_dim + self.v_head_dim)

    def flops_per_token(self, context: int) -> float:
        """Forward FLOPs of one token attending to `context` previous tokens."""
        linear = 2.0 * self.active_params
        attn = 0.0
        for g in self.layer_groups:
            span = min(context, g.window) if g.window else context
            attn += g.count * self.attn_flops_per_pair() * span
        return linear + attn


def _layer_groups(cfg: dict[str, Any], layers: int, moe: bool) -> tuple[LayerGroup, ...]:
    if not moe:
        groups = [LayerGroup(layers, False)]
    else:
        dense_first = int(cfg.get("first_k_dense_replace") or 0)
        groups = [LayerGroup(dense_first, False)] if dense_first else []
        groups.append(LayerGroup(layers - dense_first, True))
    layer_types = cfg.get("layer_types")
    window = cfg.get("sliding_window")
    if layer_types and window:
        sliding = sum(1 for t in layer_types if t == "sliding_attention")
        out = []
        for g in groups:  # split each group proportionally into windowed and full-attention layers
            n_slide = round(g.count * sliding / len(layer_types))
            if n_slide:
                out.append(LayerGroup(n_slide, g.moe, int(window)))
            if g.count - n_slide:
                out.append(LayerGroup(g.count - n_slide, g.moe, None))
        groups = out
    return tuple(groups)


def model_from_config(cfg: dict[str, Any], name: str = "custom") -> ModelSpec:
    """Read a HF config.json dict (Llama, Mistral/Mixtral, Qwen, DeepSeek, GPT-J, Falcon, GPT-2/3, gpt-oss)."""
    if not isinstance(cfg, dict):
        raise ModelConfigError("model config must be a JSON object")
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
    mla_rank = int(cfg.get("kv_lora_rank") or 0)
    v_head_dim = int(cfg.get("v_head_dim") or head_dim)
    rope_dim = int(cfg.get("qk_rope_head_dim") or 0)
    if mla_rank:
        head_dim = int(cfg.get("qk_nope_head_dim", 128)) + rope_dim
    return ModelSpec(
        name=name,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        v_head_dim=v_head_dim,
        vocab=vocab,
        intermediate=inter,
        gated_mlp=gated,
        experts=experts,
        top_k=top_k,
        expert_intermediate=expert_inter,
        shared_experts=int(cfg.get("n_shared_experts") or 0),
        mla_kv_rank=mla_rank,
        mla_rope_dim=rope_dim,
        mla_q_rank=int(cfg.get("q_lora_rank") or 0),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        layer_groups=_layer_groups(cfg, layers, experts > 0),
    )


def load_model(model: str) -> ModelSpec:
    """A zoo model by id, or any config.json by path."""
    name = model if model in catalog.model_ids() else model.rsplit("/", 1)[-1].removesuffix(".json")
    return model_from_config(catalog.model_config(model), name=name)
