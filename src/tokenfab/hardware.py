"""`Chip` (compute by precision, memory, links, power, price) and `System` (chips and their fabrics).

A `Chip` is what the performance and cost models consume; it is built from a catalog record here or
from a `ChipDesign` by the silicon model, so both paths look the same downstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tokenfab import catalog
from tokenfab.constants import Draws
from tokenfab.tech import parse_memory, parse_node, silicon_fit
from tokenfab.units import GB, PRECISION_FALLBACK, TERA, GiB

# Fabric kinds the collective model knows, each with its own alpha-beta parameters.
FABRICS = ("nvswitch", "nvlink-bridge", "infinity-fabric", "ici", "roce", "pcie", "other")

# Accelerators per server when chips talk over PCIe (the usual 8-GPU chassis).
SERVER_SLOTS = 8
# Scale-out bandwidth assumed when the catalog gives none: one 400 Gb/s NIC per chip (ConnectX-7 class,
# as in DGX H100: https://www.nvidia.com/en-us/data-center/dgx-h100/).
DEFAULT_NIC_BW = 400 * GB / 8

# Hardware families share calibrated efficiency parameters. A chip that has never been measured
# inherits its family's parameters (or the global ones if the family has no measurements).
_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("rtx-pro-6000", "nvidia-blackwell"),
    ("gb300", "nvidia-blackwell"),
    ("gb200", "nvidia-blackwell"),
    ("b300", "nvidia-blackwell"),
    ("b200", "nvidia-blackwell"),
    ("h100", "nvidia-hopper"),
    ("h200", "nvidia-hopper"),
    ("gh200", "nvidia-hopper"),
    ("a100", "nvidia-ampere"),
    ("l40", "nvidia-ada"),
    ("mi300", "amd-cdna3"),
    ("mi325", "amd-cdna3"),
    ("mi355", "amd-cdna4"),
    ("mi210", "amd-cdna2"),
    ("mi250", "amd-cdna2"),
    ("gaudi", "intel-gaudi"),
    ("tpu", "google-tpu"),
    ("trainium", "aws-neuron"),
    ("inferentia", "aws-neuron"),
)


def family_of(hw_id: str) -> str:
    for prefix, family in _FAMILY_RULES:
        if hw_id.startswith(prefix):
            return family
    return "other"


def fabric_kind(fabric: str | None, domain: int) -> str:
    """Classify a catalog fabric string into one of `FABRICS`."""
    text = (fabric or "").lower()
    if text.startswith(("pcie", "none")) or ("pcie" in text and "nvlink" not in text):
        return "pcie"
    if text.startswith("nvlink"):
        return "nvswitch" if domain > 2 and "bridge" not in text else "nvlink-bridge"
    if text.startswith("infinity") or "xgmi" in text:
        return "infinity-fabric"
    if text.startswith("ici"):
        return "ici"
    if "roce" in text or "ethernet" in text:
        return "roce"
    return "other"


_PCIE_GEN_GBS = {"3": 16.0, "4": 32.0, "5": 64.0, "6": 128.0}  # x16 per direction, GB/s


def host_link_bw(host_link: str | None) -> float:
    """Per-direction bandwidth (B/s) of a `PCIe GenN xW` host link; Gen4 x16 when unstated."""
    text = (host_link or "").lower()
    gen = re.search(r"gen\s*(\d)", text)
    width = re.search(r"x(\d+)", text)
    per_x16 = _PCIE_GEN_GBS.get(gen.group(1), 32.0) if gen else 32.0
    lanes = int(width.group(1)) if width else 16
    return per_x16 * lanes / 16 * GB


@dataclass(frozen=True)
class Range:
    """A figure with its uncertainty: typical value and low/high bounds (equal when certain)."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, value: float | None, low: float | None = None, high: float | None = None) -> Range | None:
        if value is None:
            return None
        return cls(float(value), float(low if low is not None else value), float(high if high is not None else value))


# mac_energy_pj has entries for these classes; other precisions borrow the nearest one
ENERGY_CLASS = {"fp32": "fp32", "tf32": "fp32", "bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "int8": "int8",
                "fp6": "fp8", "fp4": "fp4", "int4": "fp4", "fp64": "fp32"}


@dataclass(frozen=True)
class ChipEnergy:
    """Energy coefficients of a chip for the step-cost model (joules per step and watts)."""

    pj_per_flop: dict[str, float]  # by compute precision, operand delivery included
    dram_pj_per_bit: float
    sram_pj_per_bit: float
    link_pj_per_bit: float
    static_w: float                # drawn whatever the load
    cap_w: float                   # average power never exceeds it (the TDP)

    def flop_pj(self, precision: str) -> float:
        return self.pj_per_flop.get(precision, max(self.pj_per_flop.values()))


def energy_coefficients(node: str, memory: str, precisions: list[str], tdp_w: float, d: Draws | None = None,
                        operand_factor: float | None = None) -> ChipEnergy:
    """Component energy model of a chip on `node` with `memory`, static share of `tdp_w`, capped by it."""
    d = d or Draws()
    k = silicon_fit()["operand_energy_factor"]["value"] if operand_factor is None else operand_factor
    flop = {p: float(d("mac_energy_pj", ENERGY_CLASS.get(p, "bf16"), node)) / 2.0 * k for p in precisions}
    dram = float(d("dram_pj_per_bit", memory)) if memory != "none" else 0.0
    return ChipEnergy(flop, dram, float(d("sram_pj_per_bit")), float(d("link_pj_per_bit", "serdes")),
                      float(d("static_power_share")) * tdp_w, tdp_w)


def _record_energy(rec: dict[str, Any], flops: dict[str, float]) -> ChipEnergy | None:
    """Catalog chips: node and memory from the record (N5 / HBM3 when unstated), bounded by the TDP."""
    tdp = rec.get("tdp_w")
    if not tdp or not flops:
        return None
    node = parse_node(rec.get("process_node")) or "n5"
    memory = parse_memory((rec.get("memory") or {}).get("type")) or "HBM3"
    return energy_coefficients(node, memory, list(flops), float(tdp))


@dataclass(frozen=True)
class Chip:
    """One accelerator as the models see it, in SI units."""

    id: str
    name: str
    vendor: str
    family: str
    peak_flops: dict[str, float]          # dense FLOP/s (or OP/s) per precision that has hardware units
    mem_bytes: float                      # device memory capacity
    mem_bw: float                         # device memory bandwidth, B/s
    sram_bytes: float
    scaleup_kind: str                     # one of FABRICS
    scaleup_bw: float                     # per-chip unidirectional scale-up bandwidth, B/s
    scaleup_domain: int                   # chips in one scale-up domain
    scaleout_bw: float                    # per-chip scale-out NIC bandwidth, B/s (one direction)
    host_bw: float                        # host link (PCIe) bandwidth per direction, B/s
    tdp_w: float | None
    price_usd: Range | None = None
    cloud_usd_hr: Range | None = None
    sources: dict[str, str] = field(default_factory=dict)
    energy: ChipEnergy | None = None
    # Parallel compute units (NVIDIA SMs, AMD CUs) and the threads each keeps resident: GEMM tiles are
    # scheduled in waves over the units, and a streaming kernel's bytes in flight scale with the threads.
    # None for designs that publish neither (the models then skip those effects).
    compute_units: int | None = None
    threads_per_unit: int | None = None

    def compute_precision(self, precision: str) -> str:
        """The precision whose units actually run math stored in `precision` on this chip."""
        for candidate in PRECISION_FALLBACK.get(precision, (precision,)):
            if self.peak_flops.get(candidate):
                return candidate
        raise ValueError(f"hardware {self.id!r} has no compute units for precision {precision!r}")

    def peak(self, precision: str) -> float:
        return self.peak_flops[self.compute_precision(precision)]

    def supports(self, precision: str) -> bool:
        return bool(self.peak_flops.get(precision))


def chip_from_record(rec: dict[str, Any]) -> Chip:
    """Turn a catalog record (TFLOP/s, GB, TB/s, GB/s) into a `Chip` (SI units)."""
    flops = {p: float(v) * TERA for p, v in (rec.get("dense_tflops") or {}).items() if v}
    mem = rec.get("memory") or {}
    scale = rec.get("scaleup") or {}
    domain = int(scale.get("domain") or 1)
    price = rec.get("price_usd") or {}
    cloud = rec.get("cloud_usd_hr") or {}
    tdp = rec.get("tdp_w")
    return Chip(
        id=rec["id"],
        name=rec.get("name", rec["id"]),
        vendor=rec.get("vendor", ""),
        family=rec.get("family") or family_of(rec["id"]),
        peak_flops=flops,
        mem_bytes=float(mem.get("capacity_gb") or 0.0) * GiB,
        mem_bw=float(mem.get("bandwidth_tbps") or 0.0) * TERA,
        sram_bytes=float(rec.get("onchip_sram_mb") or 0.0) * 2**20,
        scaleup_kind=fabric_kind(scale.get("fabric"), domain),
        scaleup_bw=float(scale.get("unidir_gbs") or 0.0) * GB,
        scaleup_domain=domain,
        scaleout_bw=float(rec.get("scaleout_gbps") or 0.0) * GB / 8,
        host_bw=host_link_bw(rec.get("host_link")),
        tdp_w=float(tdp) if tdp else None,
        price_usd=Range.of(price.get("value"), price.get("low"), price.get("high")),
        cloud_usd_hr=Range.of(cloud.get("typical"), cloud.get("low"), cloud.get("high")),
        sources=dict(rec.get("sources") or {}),
        energy=_record_energy(rec, flops),
        compute_units=int(rec["compute_units"]) if rec.get("compute_units") else None,
        threads_per_unit=int(rec["threads_per_unit"]) if rec.get("threads_per_unit") else None,
    )


def load_chip(hw_id: str) -> Chip:
    """A catalog accelerator by id (raises `UnknownIdError` listing the allowed ids)."""
    return chip_from_record(catalog.accelerator(hw_id))


def all_chips() -> list[Chip]:
    return [chip_from_record(rec) for rec in catalog.accelerators().values()]


@dataclass(frozen=True)
class System:
    """Chips wired together: a scale-up domain (NVLink/ICI/...) inside a scale-out network."""

    chip: Chip
    chips: int

    @property
    def domains(self) -> int:
        return -(-self.chips // max(self.chip.scaleup_domain, 1))

    def fabric_for(self, group: int) -> tuple[str, float, bool]:
        """Fabric kind, per-chip bandwidth and in-switch reduction of a collective over `group` chips:
        the scale-up domain if it fits, PCIe inside one 8-slot server, else the scale-out NIC.
        In-switch reduction is NVLink SHARP (NVLS), which NVSwitch gen 3+ does (Hopper and later)."""
        chip = self.chip
        if group <= max(chip.scaleup_domain, 1) and chip.scaleup_bw > 0:
            nvls = chip.scaleup_kind == "nvswitch" and chip.family in ("nvidia-hopper", "nvidia-blackwell")
            return chip.scaleup_kind, chip.scaleup_bw, nvls
        if group <= SERVER_SLOTS:
            return "pcie", chip.host_bw, False
        return "roce", chip.scaleout_bw or DEFAULT_NIC_BW, False
