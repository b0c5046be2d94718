"""Readable names and units for the ids of uncertain constants (`mask_set_usd.n3` -> "mask set, N3", "$"), so the
terminal, the JSON and the report name an input the same way. Inferred from the id's words, not a table per id.
"""

from __future__ import annotations

# id words that start a unit (and what they read as), words after "per", fraction-like words, acronyms
_UNIT_START = {"usd": "$", "w": "W", "kwh": "kWh", "mm": "mm", "mm2": "mm²", "years": "years", "months": "months",
               "pct": "%", "tokens": "tokens", "gbps": "Gb/s"}
_PER = {**_UNIT_START, "year": "yr", "gb": "GB", "cm2": "cm²", "gpu": "GPU"}
_FRACTION = {"share", "margin", "yield", "discount", "premium", "decline", "maturity"}
_ACRONYMS = {"nre": "NRE", "hbm": "HBM", "pue": "PUE", "ocs": "OCS", "ip": "IP", "nic": "NIC", "gpu": "GPU",
             "nvlink": "NVLink", "tco": "TCO"}


def _catalog_unit(base: str) -> str:
    """The catalog's unit for a constant when it is short enough for a column (many are a sentence)."""
    try:
        from tokenfab.catalog import constants
        unit = str(constants().get(base, {}).get("unit") or "")
    except Exception:   # a report of a stored run must render even where the catalog changed
        return ""
    unit = unit.split(" (")[0].split(";")[0].split(",")[0]
    unit = unit.replace("USD", "$").replace("mm2", "mm²").replace("cm2", "cm²")
    return unit if 0 < len(unit) <= 16 else ""


def describe(cid: str) -> tuple[str, str]:
    """(readable name, unit) of a constant id such as `mask_set_usd.n3` -> ("mask set, N3", "$"), inferred from
    its words (unit suffixes `_usd`, `_w`, `_per_year`, ...) so every constant the summary names reads as words."""
    if cid.startswith("price:"):
        return f"price of {cid.removeprefix('price:')}", "$"
    base, _, key = cid.partition(".")
    if " " in base or not base:
        return cid, ""
    words = base.split("_")
    i = next((k for k, w in enumerate(words) if k and (w in _UNIT_START or w == "per")), len(words))
    name, rest = words[:i], words[i:]
    segs: list[list[str]] = [[]]
    for w in rest:
        if w == "per":
            segs.append([])
        else:
            segs[-1].append((_PER if len(segs) > 1 else _UNIT_START).get(w, w))
    unit = "/".join(" ".join(s) for s in segs) if rest else ""
    fraction = any(w in _FRACTION for w in name)
    if unit.startswith("/"):   # "per X" with no quantity before it
        unit = "fraction" + unit if fraction else _catalog_unit(base)
        if not unit:   # "chips per GPU": the "per" belongs to the name
            name = words
    unit = unit or _catalog_unit(base) or ("fraction" if fraction else "")
    label = " ".join(_ACRONYMS.get(w, w) for w in name)
    if key:
        label += ", " + (key.upper() if key[:1] == "n" and key[1:].isdigit() else key.replace("_", " "))
    return label, unit


def readable(cid: str) -> str:
    """A constant id as a label with its unit in brackets, for tables and axis ticks."""
    name, unit = describe(cid)
    return f"{name} ({unit})" if unit else name


__all__ = ["describe", "readable"]
