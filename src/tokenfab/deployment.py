"""How a model is laid onto chips: parallelism, precisions and the serving engine's limits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tokenfab import catalog
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.units import PRECISION_BYTES, GiB

ENGINE_FAMILIES = ("trtllm", "trtllm-legacy", "vllm", "tgi")


class DeploymentError(ValueError):
    """A layout that cannot work (tp not dividing heads, model not fitting, ...); names the field."""


def engine_family(engine: str | None) -> str:
    """Map an engine tag such as `mlperf-v4.1-trtllm` or `trtllm-0.6.1` to an engine preset."""
    tag = (engine or "trtllm").lower()
    if "vllm" in tag or "sglang" in tag:
        return "vllm"
    if "tgi" in tag:
        return "tgi"
    if tag.startswith(("trtllm-0.5", "trtllm-0.6")):
        return "trtllm-legacy"
    return "trtllm"


@dataclass(frozen=True)
class Deployment:
    """One model replica: `tp * pp` chips, experts spread over the TP group (`ep` of them by expert)."""

    tp: int = 1
    pp: int = 1
    ep: int = 1
    weight_precision: str = "bf16"
    act_precision: str = "bf16"
    kv_precision: str = "bf16"
    engine: str = "trtllm"
    max_batch: int | None = None
    max_num_tokens: int | None = None

    @property
    def devices(self) -> int:
        return self.tp * self.pp

    @property
    def preset(self) -> dict[str, Any]:
        return catalog.engines()[engine_family(self.engine)]

    @property
    def batch_limit(self) -> int:
        return int(self.max_batch or self.preset["max_batch"])

    @property
    def token_budget(self) -> int:
        return int(self.max_num_tokens or self.preset["max_num_tokens"])

    def with_(self, **changes: Any) -> Deployment:
        return replace(self, **changes)

    def check(self, model: ModelSpec, chip: Chip) -> None:
        """Raise `DeploymentError` naming the field when this layout cannot run the model."""
        for name in ("tp", "pp", "ep"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise DeploymentError(f"{name} = {value!r}: a positive integer is required")
        if model.heads % self.tp:
            raise DeploymentError(f"tp = {self.tp} does not divide the model's {model.heads} attention heads")
        if model.layers < self.pp:
            raise DeploymentError(f"pp = {self.pp} exceeds the model's {model.layers} layers")
        if self.ep > 1 and (not model.is_moe or model.experts % self.ep):
            raise DeploymentError(f"ep = {self.ep} must divide the model's {model.experts} experts")
        for name in ("weight_precision", "act_precision", "kv_precision"):
            value = getattr(self, name)
            if value not in PRECISION_BYTES:
                raise DeploymentError(f"{name} = {value!r}: allowed {', '.join(sorted(PRECISION_BYTES))}")
        chip.compute_precision(self.weight_precision)


def weight_bytes_per_device(model: ModelSpec, dep: Deployment) -> float:
    """Weights one chip holds: everything split by TP x PP, except the embedding table kept per PP end."""
    wbytes = PRECISION_BYTES[dep.weight_precision]
    # embeddings and LM head stay in 16-bit in the engines we model (they are not quantised)
    body = (model.total_params - model.embedding_params) * wbytes
    embed = model.embedding_params * 2.0
    return body / dep.devices + embed / dep.tp / (2.0 if dep.pp > 1 and not model.tied_embeddings else 1.0)


def kv_capacity_tokens(model: ModelSpec, chip: Chip, dep: Deployment) -> float:
    """Tokens of KV cache one replica holds after weights and runtime reserve (engine memory policy)."""
    preset = dep.preset
    weights = weight_bytes_per_device(model, dep)
    reserve = float(preset["runtime_reserve_gib"]) * GiB
    frac = float(preset["kv_memory_fraction"])
    if preset["kv_memory_basis"] == "free":
        free = (chip.mem_bytes - weights - reserve) * frac
    else:
        free = chip.mem_bytes * frac - weights - reserve
    kv_per_token_device = model.kv_bytes_per_token(dep.kv_precision) / dep.pp * kv_shard_fraction(model, dep.tp)
    return max(free, 0.0) / kv_per_token_device


def kv_shard_fraction(model: ModelSpec, tp: int) -> float:
    """Share of a token's KV that one TP rank stores: KV heads split over TP, replicated beyond that."""
    if model.is_mla:
        return 1.0  # the MLA latent is shared by all heads, so every TP rank keeps all of it
    return max(1.0 / tp, 1.0 / model.kv_heads)
