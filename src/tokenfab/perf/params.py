"""The named efficiency parameters of the step-cost model, and how a chip gets its set.

Roofline alone is 36-48% off; these few numbers are what make it right. They are fitted per hardware
family by `tokenfab calibrate` on published measurements and shipped in `catalog/data/calibration.json`.
A chip that was never measured takes its family's values, or the global ones, and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any

from tokenfab import catalog
from tokenfab.hardware import FABRICS, Chip, chip_from_record


@dataclass(frozen=True)
class EffParams:
    """Efficiency parameters of one chip (defaults: datasheet-only priors, before any fit)."""

    gemm_eff: float = 0.75        # fraction of 16-bit peak a large stand-alone GEMM reaches (wave-aligned shape)
    engine_gemm_ratio: float = 0.9  # an engine step's GEMMs (fused epilogues, quantisation) vs that stand-alone GEMM
    lowp_ratio: float = 0.85      # 8/4-bit GEMMs reach this fraction of the 16-bit efficiency
    gemm_m_half: float = 16.0     # GEMM rows at which shape efficiency halves (small-M tiles idle)
    roof_q: float = 3.0           # soft roofline: t = (tc^q + tm^q)^(1/q); q -> inf is max()
    mem_eff: float = 0.85         # fraction of peak memory bandwidth for streaming weights
    mem_latency: float = 8.0e-7   # loaded device-memory latency seen by a streaming kernel's threads (s)
    kv_mem_eff: float = 0.85      # paged decode attention reads KV at this fraction of mem_eff
    attn_eff: float = 0.45        # fraction of 16-bit peak reached by prefill (flash) attention
    elem_scale: float = 1.0       # norms/rotary/activation/residual kernels vs six ideal streaming passes
    moe_eff: float = 0.8          # grouped expert GEMMs (routing, permutation, ragged tiles) vs dense GEMMs
    t_step: float = 4.0e-4        # fixed cost per engine step: scheduling, sampling, host sync (s)
    t_layer: float = 1.5e-5       # per-layer kernel launch and tail cost (s)
    t_host_step: float = 1.0e-3   # host work per step that shows when the overlap scheduler is off (s)
    a2a_alpha: float = 2.5e-5     # latency of one MoE dispatch or combine (launch, signalling, RDMA round trip, s)
    t_moe_layer: float = 1.0e-6   # extra per MoE layer: routing top-k, token permutation, grouped-GEMM set-up (s)
    moe_m_half: float = 16.0      # rows per expert at which grouped-GEMM shape efficiency halves (swap-AB kernels)
    t_kernel: float = 8.0e-6      # one stand-alone kernel timed from the host (microbenchmarks, s)
    legacy_scale: float = 1.0     # time multiplier for static-batching engines of 2023 (TRT-LLM 0.5/0.6)
    legacy_gqa_reread: float = 0.3  # those engines' decode attention re-reads KV per query head of a GQA group
    legacy_layer_ratio: float = 1.0  # those engines' per-layer fixed cost vs today's (unfused kernels, no CUDA graphs)
    vllm_scale: float = 1.0       # time multiplier for vLLM/TGI relative to TensorRT-LLM
    sglang_scale: float = 1.0     # SGLang's kernel time vs TensorRT-LLM's (prior: the same kernels)
    trtllm_pytorch_scale: float = 1.0  # TensorRT-LLM PyTorch backend's kernel time vs its C++ engines' (prior: same)
    sglang_fixed_ratio: float = 1.0   # SGLang's per-step and per-layer fixed costs vs the dense fit's (<= 1)
    trtllm_pytorch_fixed_ratio: float = 1.0  # the same for TensorRT-LLM's PyTorch backend
    time_scale: float = 1.0       # on every step's time; never fitted: latency bands set it to the held-out error
    comm_alpha: dict[str, float] = field(default_factory=lambda: {
        "nvswitch": 1.2e-5, "nvlink-bridge": 1.2e-5, "infinity-fabric": 1.5e-5, "ici": 1.0e-5,
        "roce": 2.5e-5, "pcie": 2.5e-5, "other": 2.5e-5})
    comm_eff: dict[str, float] = field(default_factory=lambda: {
        "nvswitch": 0.75, "nvlink-bridge": 0.7, "infinity-fabric": 0.6, "ici": 0.7,
        "roce": 0.7, "pcie": 0.7, "other": 0.6})

    def with_(self, **changes: Any) -> EffParams:
        return replace(self, **changes)


# Parameters that may differ between hardware families (the rest are global).
FAMILY_PARAMS = ("gemm_eff", "engine_gemm_ratio", "lowp_ratio", "mem_eff", "kv_mem_eff", "attn_eff", "t_step",
                 "t_layer")
GLOBAL_PARAMS = ("gemm_m_half", "roof_q", "mem_latency", "t_kernel", "legacy_scale", "legacy_gqa_reread", "vllm_scale",
                 "moe_eff", "elem_scale", "legacy_layer_ratio")
# Parameters only large-MoE serving constrains: fitted after the rest, on the MoE rows (calibrate.moe_fit).
MOE_STAGE_PARAMS = ("sglang_scale", "trtllm_pytorch_scale", "sglang_fixed_ratio", "trtllm_pytorch_fixed_ratio",
                    "t_host_step", "a2a_alpha", "t_moe_layer", "moe_m_half")
SCALAR_PARAMS = tuple(f.name for f in fields(EffParams)
                      if f.name not in ("comm_alpha", "comm_eff", "time_scale", *MOE_STAGE_PARAMS))
assert set(FAMILY_PARAMS) | set(GLOBAL_PARAMS) == set(SCALAR_PARAMS)
assert set(EffParams().comm_alpha) == set(FABRICS)


def vendor_key(chip: Chip) -> str:
    """The vendor level of the parameter hierarchy: chips of one vendor share compilers and math libraries."""
    return chip.vendor.strip().lower() or "other"


@dataclass(frozen=True)
class Calibration:
    """Global parameters, per-vendor then per-family overrides, with the provenance of the fit.

    A chip takes its family's values if its family was measured, else its vendor's, else the global ones.
    A profile measured on one device (`tokenfab calibrate --device`) adds `hardware` overrides for that
    device id only, so it refines that device and leaves every other prediction as the published fit
    had it; `chips` carries catalog-format records of devices that are not in the catalog (a CPU,
    measured rather than taken from a datasheet).
    """

    global_params: EffParams
    family: dict[str, dict[str, float]]
    provenance: dict[str, Any]
    vendor: dict[str, dict[str, float]] = field(default_factory=dict)
    hardware: dict[str, dict[str, float]] = field(default_factory=dict)
    chips: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_chip(self, chip: Chip) -> EffParams:
        overrides = {**self.vendor.get(vendor_key(chip), {}), **self.family.get(chip.family, {}),
                     **self.hardware.get(chip.id, {})}
        return self.global_params.with_(**overrides) if overrides else self.global_params

    def extra_chips(self) -> dict[str, Chip]:
        """The devices this profile describes that the catalog does not have, by id."""
        return {hw_id: chip_from_record(rec) for hw_id, rec in self.chips.items()}

    def to_json(self) -> dict[str, Any]:
        fitted = {k: v for k, v in asdict(self.global_params).items() if k != "time_scale"}
        data = {"global": fitted, "vendor": self.vendor, "family": self.family,
                "provenance": self.provenance}
        if self.hardware:
            data["hardware"] = self.hardware
        if self.chips:
            data["chips"] = self.chips
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(EffParams(**data["global"]), {k: dict(v) for k, v in data["family"].items()},
                   dict(data.get("provenance", {})), {k: dict(v) for k, v in data.get("vendor", {}).items()},
                   {k: dict(v) for k, v in data.get("hardware", {}).items()},
                   {k: dict(v) for k, v in data.get("chips", {}).items()})


UNCALIBRATED = Calibration(EffParams(), {}, {"note": "datasheet-only defaults, no fit"})


@cache
def shipped_calibration() -> Calibration:
    """The calibration shipped with the package (falls back to the priors if none was fitted)."""
    path = catalog.calibration_path()
    if not path.is_file():
        return UNCALIBRATED
    return Calibration.from_json(json.loads(path.read_text()))


def load_calibration(path: str | None) -> Calibration:
    if path is None:
        return shipped_calibration()
    with open(path) as fh:
        return Calibration.from_json(json.load(fh))
