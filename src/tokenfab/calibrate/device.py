"""Which `Chip` a calibrated device is: a catalog accelerator found from its name, or a measured CPU.

A GPU is predicted from its datasheet (the catalog record), so the fitted efficiencies mean what they
mean for every other chip. A CPU has no datasheet in the catalog: its record is built from what the
microbenchmarks measured, and says so in its sources.
"""

from __future__ import annotations

import re
from typing import Any

from tokenfab import catalog
from tokenfab.units import GiB

# torch.cuda.get_device_name() -> catalog id; first match wins, so the specific names come first.
GPU_NAMES: tuple[tuple[str, str], ...] = (
    (r"GH200", "gh200"),
    (r"H200 NVL", "h200-nvl"),
    (r"H200", "h200"),
    (r"H100 NVL", "h100-nvl"),
    (r"H100.*PCIe", "h100-pcie"),
    (r"H100", "h100-sxm"),          # "NVIDIA H100 80GB HBM3" is the SXM5 part
    (r"A100.*PCIE|A100 80GB PCIe", "a100-pcie"),
    (r"A100", "a100-sxm"),
    (r"L40S", "l40s"),
    (r"GB300", "gb300"),
    (r"GB200", "gb200"),
    (r"B300", "b300"),
    (r"B200", "b200"),
    (r"RTX PRO 6000", "rtx-pro-6000"),
    (r"MI355", "mi355x"),
    (r"MI325", "mi325x"),
    (r"MI300X", "mi300x"),
    (r"MI210", "mi210"),
)

CPU_ID = "cpu"
CPU_FAMILY = "cpu"


def hardware_for_gpu(name: str, override: str | None = None) -> str:
    """The catalog id of a GPU from its driver name (or `override`, checked against the catalog)."""
    if override:
        catalog.accelerator(override)  # raises UnknownIdError listing the allowed ids
        return override
    for pattern, hw_id in GPU_NAMES:
        if re.search(pattern, name, re.IGNORECASE):
            return hw_id
    known = ", ".join(sorted({hw for _p, hw in GPU_NAMES}))
    raise KeyError(f"GPU {name!r} is not one the catalog knows by name ({known}): give --hardware ID")


def measured_cpu_record(name: str, threads: int, peak_flops: dict[str, float], mem_bw: float,
                        mem_bytes: float, date: str) -> dict[str, Any]:
    """A catalog-format record (TFLOP/s, GiB, TB/s) of a CPU whose figures were measured, not looked up."""
    how = f"measured by tokenfab calibrate --device cpu on {date}, {threads} thread(s); not a datasheet figure"
    return {
        "id": CPU_ID,
        "name": f"{name} ({threads} thread{'s' if threads != 1 else ''}, measured)",
        "vendor": "",
        "kind": "CPU",
        "family": CPU_FAMILY,
        "dense_tflops": {p: v / 1e12 for p, v in peak_flops.items()},
        "memory": {"capacity_gb": mem_bytes / GiB, "bandwidth_tbps": mem_bw / 1e12},
        "scaleup": {"fabric": "none", "domain": 1, "unidir_gbs": 0},
        "tdp_w": None,
        "measured": True,
        "sources": {"dense_tflops": f"best matmul of the GEMM grid, {how}",
                    "memory.bandwidth_tbps": f"streaming copy, {how}",
                    "memory.capacity_gb": "physical memory reported by the operating system"},
    }


def physical_memory_bytes() -> float:
    """Total RAM (the capacity a CPU 'device' has for weights and KV cache)."""
    try:
        import os
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * GiB
