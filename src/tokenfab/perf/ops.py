"""Operator table of an engine step: FLOPs, bytes and GEMM shapes per operator, no efficiencies.

This is pure counting (DESIGN.md's first-order physics). The table depends on the model, layout,
chip precisions and step shapes but not on any fitted parameter, so calibration builds it once per
query and re-times it cheaply for every trial parameter set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.deployment import Deployment, kv_shard_fraction
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.shapes import StepShapes
from tokenfab.units import PRECISION_BYTES

# operator kinds
GEMM, ATTN_DECODE, ATTN_PREFILL, ELEMENTWISE = 0, 1, 2, 3
KIND_NAMES = ("gemm", "attn_decode", "attn_prefill", "elementwise")

# Activation bytes moved per token per layer by norms, residual adds, rotary and activation
# functions, in units of hidden-size elements (about six read/write passes over the residual stream
# plus the MLP activation); these kernels are pure streaming.
ELEMENTWISE_PASSES = 6.0
# Share of a GPU's compute units that normal-mode dispatch/combine kernels hold while they run under the other
# micro-batch's compute: 20 of an H800's 132 SMs (DeepSeek-V3 technical report, section 3.2.2,
# https://arxiv.org/abs/2412.19437). Low-latency (decode) kernels overlap through a receive hook and hold none
# (https://github.com/deepseek-ai/DeepEP, "hook-based communication-computation overlapping ... without
# occupying any SM resource").
COMM_SM_SHARE = 20.0 / 132.0
# Activations between kernels (residual stream, all-reduce payloads) stay 16-bit even in FP8 engines.
ACTIVATION_BYTES = 2.0


@dataclass(frozen=True)
class OpTable:
    """Per-device costs of S steps over n operators (arrays (S, n)), plus the collectives."""

    flops: np.ndarray
    bytes: np.ndarray
    gemm_m: np.ndarray         # GEMM rows per operator (for shape efficiency); 0 for non-GEMMs
    kind: np.ndarray           # (n,) operator kind
    lowp: np.ndarray           # (n,) True where the math runs on 8/4-bit units
    peak: np.ndarray           # (n,) peak FLOP/s of the units each operator runs on
    pj_per_flop: np.ndarray    # (n,) energy per FLOP of those units (0 when the chip has no energy model)
    names: tuple[str, ...]
    comm_bytes: np.ndarray     # (S,) bytes per all-reduce (per call)
    comm_calls: float          # all-reduces per step on each device
    comm_group: int            # ranks per all-reduce
    layers_per_device: float
    pp: int
    expert: np.ndarray         # (n,) True for routed-expert GEMMs
    gqa_group: float           # query heads per KV head (1 for MHA and MLA)
    a2a_intra: np.ndarray | None = None  # (S,) bytes one device sends inside its scale-up domain per all-to-all
    a2a_inter: np.ndarray | None = None  # (S,) bytes it sends across domains (scale-out NIC) per all-to-all
    a2a_calls: float = 0.0     # all-to-alls per step (dispatch + combine per MoE layer)
    a2a_sm_share: np.ndarray | None = None  # (S,) compute share the all-to-all kernels hold while overlapped
    overlap: bool = False      # micro-batch overlap: the all-to-all runs under the step's compute
    moe_layers: float = 0.0    # MoE layers per device (each pays routing and permutation kernels)
    eager: bool = False        # kernels launched one by one from the host (no CUDA graphs)
    host_exposed: bool = False  # the engine's host work per step runs between GPU steps (no overlap scheduler)


def _flop_pj(chip: Chip, precision: str) -> float:
    return chip.energy.flop_pj(precision) if chip.energy else 0.0


def _expert_hits(experts: int, top_k: int, tokens: np.ndarray) -> np.ndarray:
    """Distinct experts hit by `tokens` tokens each choosing top_k of experts uniformly."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def ep_imbalance(mean_rows: np.ndarray, ranks: int) -> np.ndarray:
    """Busiest EP rank's routed rows over the mean: the expected maximum of `ranks` bins that receive
    `mean_rows` rows each on average (uniform routing; Gaussian tail of the balls-in-bins maximum,
    E[max] ~ m + sqrt(2 m ln n)). A step lasts as long as its busiest rank."""
    if ranks <= 1:
        return np.ones_like(mean_rows)
    m = np.maximum(mean_rows, 1e-9)
    return 1.0 + np.sqrt(2.0 * np.log(ranks) / m) * np.sqrt(1.0 - 1.0 / ranks)


def a2a_bytes(model: ModelSpec, chip: Chip, dep: Deployment, tokens: np.ndarray, act_bytes: float,
              decode_only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bytes one device sends in each all-to-all of an MoE layer (the mean of its dispatch and its combine),
    inside and across its scale-up domain.

    Each chip scatters 1/width of the stage's tokens; dispatch carries `act_bytes` per element (FP8 in
    DeepEP), combine 16-bit. Two modes, as DeepEP runs them (github.com/deepseek-ai/DeepEP):
    - normal (steps with prompt work): a token goes once to every distinct chip of its domain that holds one
      of its top-k experts (P(chip hit) = 1 - (1 - 1/ep)^k), and once to every distinct remote domain, where
      NVLink forwards it (node-limited routing);
    - low latency (decode-only steps): one copy per selected expert, no de-duplication, straight to the
      expert's chip; the README's figures (128 tokens, hidden 7168, top-8: 173 us dispatch at EP64, ~43 GB/s
      of RDMA) are that volume at the NIC's rate.
    """
    ep, k = dep.ep, model.top_k
    group = max(min(chip.scaleup_domain, ep), 1)
    domains = ep / group
    per_chip = tokens / dep.width * model.hidden * (act_bytes + ACTIVATION_BYTES) / 2.0
    intra = per_chip * (group - 1) * (1.0 - (1.0 - 1.0 / ep) ** k)
    inter = per_chip * (domains - 1) * (1.0 - (1.0 - 1.0 / domains) ** k) if domains > 1 else np.zeros_like(tokens)
    if decode_only is not None:
        ll_intra = per_chip * k * (group - 1) / ep
        ll_inter = per_chip * k * (ep - group) / ep
        intra = np.where(decode_only, ll_intra, intra)
        inter = np.where(decode_only, ll_inter, inter)
    return intra, inter


def build_ops(model: ModelSpec, chip: Chip, dep: Deployment, steps: StepShapes) -> OpTable:
    """Count FLOPs and bytes of every operator of each step on one device."""
    tp = dep.tp
    wbytes = PRECISION_BYTES[dep.weight_precision]
    abytes = ACTIVATION_BYTES
    kvbytes = PRECISION_BYTES[dep.kv_precision]
    # GEMM math runs at the wider of weight and activation precision (W8A16 is 16-bit math),
    # on units the chip really has
    wider = max((dep.weight_precision, dep.act_precision), key=lambda p: PRECISION_BYTES[p])
    gemm_prec = chip.compute_precision(wider)
    lowp = PRECISION_BYTES[gemm_prec] < 2
    gemm_peak = chip.peak_flops[gemm_prec]
    # attention math is 16-bit unless the engine runs FP8 attention kernels on an FP8 cache
    attn_prec = chip.compute_precision("fp8" if dep.fp8_attention else "bf16")
    attn_peak = chip.peak_flops[attn_prec]
    half_prec = chip.compute_precision("bf16")
    half_peak = chip.peak_flops[half_prec]
    d = dep.mtp
    dp = dep.attn_dp
    # speculative decoding: every decode sequence runs its token and the d drafts through the model
    tokens = steps.decode_seqs * (1 + d) + steps.prefill_tokens
    emit = steps.logits * (1 + d) if d else steps.logits
    tok_attn = tokens / dp           # rows one attention data-parallel group processes
    S = len(steps)
    layers_dev = model.layers / dep.pp

    cols: list[tuple[str, int, bool, float, np.ndarray, np.ndarray, np.ndarray]] = []
    # micro-batch overlap runs every layer twice, once per half batch: weights are read twice, GEMMs are half as tall
    micro = float(dep.micro_batches)

    def gemm(name: str, weights: float, m: np.ndarray, layers: float, out_cols: float) -> None:
        """A weight GEMM of `weights` elements per device with M = m rows, over `layers` layers."""
        flops = 2.0 * m * weights * layers
        k_in = weights / max(out_cols, 1.0)
        byts = (weights * wbytes * micro + m * (k_in + out_cols) * abytes) * layers
        cols.append((name, GEMM, lowp, gemm_peak, flops, byts, m / micro))

    zeros = np.zeros(S)
    attn_w = model.attn_params / tp
    qkv_cols = (model.heads * model.head_dim + 2 * model.kv_heads * model.head_dim) / tp
    kv_share = kv_shard_fraction(model, tp)
    kv_tok_bytes = model.kv_elems_per_token_layer * kvbytes * kv_share
    pair_flops = model.attn_flops_per_pair() / tp
    prefill_pair_flops = model.attn_flops_per_pair_prefill() / tp

    moe_layers = model.moe_layer_count / dep.pp
    dense_layers = model.layers / dep.pp - moe_layers
    gemm("attn_proj", attn_w, tok_attn, layers_dev, qkv_cols + model.hidden)
    if dense_layers:
        gemm("mlp", model.dense_mlp_params / tp, tok_attn, dense_layers, model.intermediate / tp)
    if moe_layers:
        hits = _expert_hits(model.experts, model.top_k, tokens / micro)
        rows = tokens / micro * model.top_k / np.maximum(hits, 1e-9)
        # this chip holds 1/ep of the experts, split moe_tp ways; the busiest chip sets the pace
        routed = tokens * model.top_k / dep.ep
        busiest = routed * ep_imbalance(routed, dep.ep)
        weights_hit = micro * hits / dep.ep * model.expert_params / dep.moe_tp
        flops = 2.0 * busiest * model.expert_params / dep.moe_tp * moe_layers
        byts = (weights_hit * wbytes + 2 * busiest * model.hidden * abytes) * moe_layers
        cols.append(("experts", GEMM, lowp, gemm_peak, flops, byts, rows))
        shared = (model.shared_expert_params + model.router_params) / tp
        gemm("shared_experts", shared, tok_attn, moe_layers, model.expert_intermediate / tp + model.experts)

    # attention: decode reads every cached token's KV once; prefill is compute-bound flash attention
    for g in model.layer_groups:
        n_layers = g.count / dep.pp
        ctx = steps.decode_ctx / dp
        pairs = steps.prefill_pairs / dp
        ptok = steps.prefill_tokens / dp
        if g.window:
            ctx = np.minimum(ctx, steps.decode_seqs / dp * g.window)
            pairs = np.minimum(pairs, ptok * g.window)
        # each of a sequence's 1 + d query tokens attends to its context; the KV is read once
        cols.append((f"attn_decode{'_swa' if g.window else ''}", ATTN_DECODE, False, attn_peak,
                     pair_flops * ctx * (1 + d) * n_layers, kv_tok_bytes * ctx * n_layers, zeros))
        prefill_kv = pairs / np.maximum(ptok, 1e-9)  # mean span ~ KV tokens streamed per tile
        pbytes = (ptok * (qkv_cols + model.heads * model.v_head_dim / tp) * abytes
                  + prefill_kv * kv_tok_bytes) * n_layers
        cols.append((f"attn_prefill{'_swa' if g.window else ''}", ATTN_PREFILL, False, attn_peak,
                     prefill_pair_flops * pairs * n_layers, pbytes, zeros))

    elem_bytes = ELEMENTWISE_PASSES * tok_attn * model.hidden * abytes * layers_dev
    cols.append(("elementwise", ELEMENTWISE, False, half_peak, zeros, elem_bytes, zeros))
    lm_w = model.vocab * model.hidden / tp
    lm_rows = emit / dp
    flops = 2.0 * lm_rows * lm_w / dep.pp
    byts = (lm_w * 2.0 + lm_rows * (model.hidden + model.vocab / tp) * abytes) / dep.pp
    cols.append(("lm_head", GEMM, False, half_peak, flops, byts, lm_rows))
    if d:
        # the MTP module drafts d tokens one after another; each pass is one MoE decoder layer (attention,
        # shared expert, the routed experts its rows hit) plus the 2h x h input projection, and the LM head
        draft_rows = steps.logits / dp
        replicated = (model.attn_params + model.shared_expert_params + model.router_params
                      + 2 * model.hidden * model.hidden) / tp
        hit = _expert_hits(model.experts, model.top_k, steps.logits) / dep.ep * model.expert_params / dep.moe_tp
        draft_w = replicated + hit + lm_w
        flops = 2.0 * draft_rows * (replicated + lm_w + model.top_k * model.expert_params / dep.width) * d / dep.pp
        byts = (draft_w * wbytes + draft_rows * 2 * model.hidden * abytes) * d / dep.pp
        cols.append(("mtp_draft", GEMM, lowp, gemm_peak, flops, byts, draft_rows))

    decode_only = steps.prefill_tokens <= 0
    a2a = (a2a_bytes(model, chip, dep, tokens, min(PRECISION_BYTES[dep.act_precision], abytes),
                     decode_only=decode_only) if dep.all_to_all else (zeros, zeros))
    names = tuple(c[0] for c in cols)
    return OpTable(
        flops=np.stack([c[4] for c in cols], axis=1),
        bytes=np.stack([c[5] for c in cols], axis=1),
        gemm_m=np.stack([c[6] for c in cols], axis=1),
        kind=np.array([c[1] for c in cols]),
        lowp=np.array([c[2] for c in cols]),
        peak=np.array([c[3] for c in cols]),
        pj_per_flop=np.array([_flop_pj(chip, gemm_prec if c[1] == GEMM and c[0] != "lm_head"
                                       else attn_prec if c[1] in (ATTN_DECODE, ATTN_PREFILL) else half_prec)
                              for c in cols]),
        names=names,
        comm_bytes=tok_attn * model.hidden * abytes,
        # all-reduce after attention and after each MLP; an all-to-all MoE layer replaces the second
        comm_calls=((layers_dev + (dense_layers if dep.all_to_all else layers_dev)) if tp > 1 else 0.0),
        comm_group=tp,
        layers_per_device=layers_dev,
        pp=dep.pp,
        expert=np.array([c[0] == "experts" for c in cols]),
        gqa_group=1.0 if model.is_mla else model.heads / model.kv_heads,
        a2a_intra=a2a[0],
        a2a_inter=a2a[1],
        a2a_sm_share=np.where(decode_only, 0.0, COMM_SM_SHARE),
        a2a_calls=2.0 * moe_layers if dep.all_to_all else 0.0,
        overlap=dep.overlap,
        moe_layers=moe_layers,
        eager=not dep.cuda_graphs,
        host_exposed=not dep.host_overlap,
    )
