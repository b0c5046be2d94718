"""How a model is laid onto chips: parallelism, precisions and the serving engine's limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from tokenfab import catalog
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.units import PRECISION_BYTES, GiB

ENGINE_FAMILIES = ("trtllm", "trtllm-pytorch", "trtllm-legacy", "vllm", "vllm-v1", "sglang", "tgi")
_VLLM_VERSION = re.compile(r"vllm[- ]?(\d+)\.(\d+)")
# Speculative decoding: the most draft tokens one decode step verifies (engines publish MTP 1-5, EAGLE 3-7).
MAX_DRAFT_TOKENS = 8


class DeploymentError(ValueError):
    """A layout that cannot work (tp not dividing heads, model not fitting, ...); names the field."""


def engine_family(engine: str | None) -> str:
    """Map an engine tag such as `mlperf-v4.1-trtllm`, `trtllm-0.6.1`, `sglang-0.5.2` or
    `mlperf-v5.1-vllm-0.9.0.2-rocm` to an engine preset."""
    tag = (engine or "trtllm").lower()
    if "sglang" in tag:
        return "sglang"
    if "vllm" in tag:
        # the V1 engine is vLLM's from 0.8 on; an unversioned tag is a current release
        version = _VLLM_VERSION.search(tag)
        if version and (int(version.group(1)), int(version.group(2))) < (0, 8):
            return "vllm"
        return "vllm-v1"
    if "tgi" in tag:
        return "tgi"
    if tag.startswith(("trtllm-0.5", "trtllm-0.6")):
        return "trtllm-legacy"
    if "trtllm" in tag and ("pytorch" in tag or re.search(r"trtllm-[1-9]\d*\.", tag)):
        return "trtllm-pytorch"   # TensorRT-LLM's PyTorch backend, the default from 1.0
    return "trtllm"


@dataclass(frozen=True)
class Deployment:
    """One model replica: its parallel layout, precisions, speculative decoding and the engine's limits.

    Layout. Attention and dense layers are split `tp` ways; the routed experts `ep` ways.
    - `ep <= tp`: experts are spread over the TP group (each of `ep` expert groups split `tp/ep` ways),
      and MoE outputs are summed by the same all-reduce as a dense MLP (TensorRT-LLM's attention-TP MoE-EP).
    - `ep > tp`: data-parallel attention (SGLang `--enable-dp-attention`, DeepSeek's serving): `ep/tp`
      attention groups of `tp` chips each serve their own sequences, and every MoE layer sends each token
      to the chips holding its experts and back (dispatch and combine all-to-all). The replica is `ep * pp`
      chips; the data convention for it is `tp=1, ep=N, replicas=1`.
    `host_overlap`: the engine's overlap scheduler hides its host work (scheduling, stop checks, the
    data-parallel ranks' batch-size exchange) under the GPU's; SGLang turns it off for speculative decoding.
    `redundant_experts` extra expert copies per EP group balance hot experts (EPLB) at the price of memory.
    `mtp` draft tokens are verified per decode step and `accept` tokens (bonus included) emitted on average.
    `overlap`: the all-to-all runs under compute; off unless the engine says so. With `micro_batches = 2`
    (DeepSeek's dual micro-batch overlap, SGLang's two-batch overlap) the step is split in two halves, one's
    all-to-all under the other's compute, each half reading the weights again; SGLang's single-batch overlap
    hides it inside one batch (`micro_batches = 1`).
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    weight_precision: str = "bf16"
    act_precision: str = "bf16"
    kv_precision: str = "bf16"
    engine: str = "trtllm"
    max_batch: int | None = None
    max_num_tokens: int | None = None
    mtp: int = 0
    accept: float = 1.0
    redundant_experts: int = 0
    overlap: bool = False      # the MoE all-to-all runs under compute (two-batch or single-batch overlap)
    micro_batches: int = 1     # two-batch overlap splits each step in two, each running every layer
    cuda_graphs: bool = True   # False: every kernel launched from the host (vLLM --enforce-eager)
    fp8_attention: bool = False  # attention math on FP8 units over an FP8 cache (FlashMLA FP8, FA3 FP8 FMHA)
    host_overlap: bool = True  # the scheduler prepares step n+1 on the host while the GPU runs step n

    @property
    def width(self) -> int:
        """Chips in one pipeline stage."""
        return max(self.tp, self.ep)

    @property
    def devices(self) -> int:
        return self.width * self.pp

    @property
    def attn_dp(self) -> int:
        """Attention data-parallel groups in the replica (1 unless `ep > tp`)."""
        return max(self.ep // self.tp, 1)

    @property
    def moe_tp(self) -> int:
        """Chips that split one expert group (TP inside an EP group)."""
        return self.width // self.ep

    @property
    def all_to_all(self) -> bool:
        """Whether MoE layers exchange tokens all-to-all (data-parallel attention) rather than all-reduce."""
        return self.ep > self.tp

    @property
    def preset(self) -> dict[str, Any]:
        return catalog.engines()[engine_family(self.engine)]

    @property
    def batch_limit(self) -> int:
        """Sequences in flight in the replica: each attention data-parallel group schedules its own batch
        up to the limit (TensorRT-LLM's per-rank max_batch_size, vLLM's max_num_seqs per DP rank)."""
        return int(self.max_batch or self.preset["max_batch"]) * self.attn_dp

    @property
    def token_budget(self) -> int:
        """Tokens per step in the replica, each attention group filling its own budget."""
        return int(self.max_num_tokens or self.preset["max_num_tokens"]) * self.attn_dp

    def with_(self, **changes: Any) -> Deployment:
        return replace(self, **changes)

    def check(self, model: ModelSpec, chip: Chip) -> None:
        """Raise `DeploymentError` naming the field when this layout cannot run the model."""
        for name in ("tp", "pp", "ep"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DeploymentError(f"{name} = {value!r}: a positive integer is required")
        if model.heads % self.tp:
            raise DeploymentError(f"tp = {self.tp} does not divide the model's {model.heads} attention heads")
        if model.layers < self.pp:
            raise DeploymentError(f"pp = {self.pp} exceeds the model's {model.layers} layers")
        if self.ep > 1:
            if not model.is_moe:
                raise DeploymentError(f"ep = {self.ep}: the model has no experts (allowed: ep = 1)")
            if (model.experts + self.redundant_experts) % self.ep:
                raise DeploymentError(f"ep = {self.ep} must divide the model's {model.experts} experts (plus "
                                      f"redundant_experts = {self.redundant_experts})")
            if max(self.ep, self.tp) % min(self.ep, self.tp):
                raise DeploymentError(f"ep = {self.ep} and tp = {self.tp}: one must be a multiple of the other")
        if not isinstance(self.redundant_experts, int) or self.redundant_experts < 0:
            raise DeploymentError(f"redundant_experts = {self.redundant_experts!r}: a non-negative integer is required")
        if self.micro_batches not in (1, 2):
            raise DeploymentError(f"micro_batches = {self.micro_batches!r}: allowed 1 or 2")
        self._check_speculation(model)
        for name in ("weight_precision", "act_precision", "kv_precision"):
            value = getattr(self, name)
            if value not in PRECISION_BYTES:
                raise DeploymentError(f"{name} = {value!r}: allowed {', '.join(sorted(PRECISION_BYTES))}")
        # 4-bit weights may run weight-only (dequantised to the activation precision); anything else needs units
        for name in ("weight_precision", "act_precision"):
            if name == "weight_precision" and PRECISION_BYTES[self.weight_precision] < 1:
                continue
            try:
                chip.compute_precision(getattr(self, name))
            except ValueError:
                raise DeploymentError(f"{name} = {getattr(self, name)!r}: {chip.id} has no units for it (it has "
                                      f"{', '.join(p for p in PRECISION_BYTES if chip.supports(p))})") from None

    def _check_speculation(self, model: ModelSpec) -> None:
        if not isinstance(self.mtp, int) or isinstance(self.mtp, bool) or not 0 <= self.mtp <= MAX_DRAFT_TOKENS:
            raise DeploymentError(f"mtp = {self.mtp!r}: draft tokens per step must be 0..{MAX_DRAFT_TOKENS}")
        if self.mtp and not model.mtp_layers:
            raise DeploymentError(f"mtp = {self.mtp}: model {model.name} has no multi-token-prediction module "
                                  "(allowed: mtp = 0)")
        if not 1.0 <= float(self.accept) <= self.mtp + 1:
            raise DeploymentError(f"accept = {self.accept!r}: tokens emitted per step must be in 1..{self.mtp + 1} "
                                  f"with mtp = {self.mtp}")


def host_overlap_default(engine: str, mtp: int) -> bool:
    """Whether the engine overlaps its host work with the GPU when nothing says otherwise. SGLang disables its
    overlap scheduler with EAGLE/MTP speculative decoding (v0.5.6 server_args: "Overlap scheduler is disabled
    because of using eagle speculative decoding", unless SGLANG_ENABLE_SPEC_V2 is set)."""
    return not (engine_family(engine) == "sglang" and mtp > 0)


def design_layout(model: ModelSpec, tp: int, pp: int, ep: int, weight_precision: str, kv_precision: str,
                  mtp: int = 0, **limits: Any) -> Deployment:
    """The deployment a design point names: 4-bit weights run with FP8 activations, MTP at the published
    acceptance of the model's family, wide EP (ep > tp) filled with redundant experts up to a multiple of ep
    (EPLB) and its all-to-all overlapped with compute inside each batch (single-batch overlap)."""
    from tokenfab.speculation import default_acceptance

    act = weight_precision if PRECISION_BYTES[weight_precision] >= 1 else "fp8"
    return Deployment(tp=tp, pp=pp, ep=ep, weight_precision=weight_precision, act_precision=act,
                      kv_precision=kv_precision, mtp=mtp, accept=default_acceptance(model.name, mtp),
                      redundant_experts=eplb_redundant_experts(model, tp, ep), overlap=ep > tp and model.is_moe,
                      **limits)


def eplb_redundant_experts(model: ModelSpec, tp: int, ep: int) -> int:
    """Redundant expert copies a wide-EP engine places so every rank holds as many experts (EPLB): up to the
    next multiple of `ep` (SGLang's 288 physical experts on EP72, DeepSeek's EP144 decode 256 + 32); none
    when experts are spread inside the TP group (`ep <= tp`)."""
    if not model.is_moe or ep <= tp:
        return 0
    return -(-model.experts // ep) * ep - model.experts


def layout_dict(dep: Deployment) -> dict[str, Any]:
    """The search axes of a deployment, as stored with a design point."""
    return {"tp": dep.tp, "pp": dep.pp, "ep": dep.ep, "mtp": dep.mtp, "weight_precision": dep.weight_precision,
            "kv_precision": dep.kv_precision}


def weight_bytes_per_device(model: ModelSpec, dep: Deployment) -> float:
    """Weights one chip holds.

    Attention, dense MLPs, shared experts and routers are split `tp` ways and replicated over the
    attention data-parallel groups; routed experts (with any redundant copies) are split over all the
    stage's chips; the embedding table and LM head stay 16-bit (engines do not quantise them) and sit at
    the pipeline's ends; an MTP draft module is held on top of the body when speculation uses it.
    """
    wbytes = PRECISION_BYTES[dep.weight_precision]
    routed = model.moe_layer_count * model.experts * model.expert_params
    replicated = model.total_params - model.embedding_params - routed
    routed *= 1.0 + dep.redundant_experts / max(model.experts, 1)
    body = (replicated / dep.tp + routed / dep.width) * wbytes / dep.pp
    if dep.mtp:  # one MoE layer and a projection, mostly routed experts, so spread like them
        body += model.mtp_params * wbytes / dep.width
    embed = model.embedding_params * 2.0
    return body + embed / dep.tp / (2.0 if dep.pp > 1 and not model.tied_embeddings else 1.0)


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
    # each attention data-parallel group keeps the KV of its own sequences
    return max(free, 0.0) / kv_per_token_device * dep.attn_dp


def kv_shard_fraction(model: ModelSpec, tp: int) -> float:
    """Share of a token's KV that one TP rank stores: KV heads split over TP, replicated beyond that."""
    if model.is_mla:
        return 1.0  # the MLA latent is shared by all heads, so every TP rank keeps all of it
    return max(1.0 / tp, 1.0 / model.kv_heads)
