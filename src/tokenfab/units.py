"""Unit constants and parsing of human-written quantities ("80GB", "3.35TB/s").

Everything inside tokenfab is SI (seconds, bytes, FLOP, watts, USD); conversions happen only here and
at the CLI edge.
"""

from __future__ import annotations

import re

KB, MB, GB, TB = 1e3, 1e6, 1e9, 1e12
KiB, MiB, GiB, TiB = 2.0**10, 2.0**20, 2.0**30, 2.0**40
TERA = 1e12
GIGA = 1e9
MS = 1e-3
US = 1e-6

# Bytes per element of each storage precision. fp4 carries one 8-bit scale per 16 elements
# (NVFP4 block scaling; MXFP4 uses one per 32) so it costs 4.5 bits rather than 4.
PRECISION_BYTES: dict[str, float] = {
    "fp64": 8.0,
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp6": 0.75,
    "fp4": 0.5625,
    "int4": 0.5625,
}

# Which compute precision a storage precision is promoted to when a chip lacks its units,
# in order of preference (a chip without fp8 units runs fp8 weights through bf16/fp16 math).
PRECISION_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp4": ("fp4", "fp6", "fp8", "int8", "bf16", "fp16"),
    "int4": ("int8", "fp8", "bf16", "fp16"),
    "fp6": ("fp6", "fp8", "bf16", "fp16"),
    "fp8": ("fp8", "bf16", "fp16"),
    "int8": ("int8", "fp8", "bf16", "fp16"),
    "bf16": ("bf16", "fp16"),
    "fp16": ("fp16", "bf16"),
    "fp32": ("fp32", "tf32"),
}

_SIZE_UNITS = {
    "": 1.0, "b": 1.0,
    "kb": KB, "mb": MB, "gb": GB, "tb": TB,
    "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB,
}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*(/s)?\s*$")


def parse_bytes(text: str | float | int) -> float:
    """Parse "80GB", "3.35TB/s", "64 MiB" or a plain number into bytes (or bytes/s)."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r} as a size: expected a number and a unit such as 80GB or 3.35TB/s")
    value, unit, _ = match.groups()
    unit = unit.lower()
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}: allowed {sorted(k for k in _SIZE_UNITS if k)}")
    return float(value) * _SIZE_UNITS[unit]


def precision_bytes(precision: str) -> float:
    """Bytes per element of a storage precision, with a clear error for an unknown one."""
    try:
        return PRECISION_BYTES[precision]
    except KeyError:
        raise ValueError(f"precision {precision!r} unknown: allowed {sorted(PRECISION_BYTES)}") from None


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_index(text: str) -> int:
    """'2026-12' -> months since year 0 (differences are month counts); ValueError if not YYYY-MM."""
    m = _MONTH.match(str(text))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"{text!r}: a month is written YYYY-MM (e.g. 2026-12)")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def month_label(index: int) -> str:
    """Months since year 0 -> 'YYYY-MM'."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
