"""Process nodes and memory technologies: the names the silicon model and the catalog chips share.

A design names its node (`n5`) and memory (`HBM3E`); catalog records carry free text ("TSMC 4N
(N5-family)", "HBM3e"). Both are reduced here to the keys of the node- and memory-keyed constants.
"""

from __future__ import annotations

import re

from tokenfab import catalog

NODES = ("n16", "n7", "n6", "n5", "n4", "n3", "n2")
HBM_TYPES = ("HBM2", "HBM2e", "HBM3", "HBM3E", "HBM4")
DRAM_TYPES = ("LPDDR5", "GDDR6", "GDDR7")
MEMORY_TYPES = (*HBM_TYPES, *DRAM_TYPES, "none")

# Free-text node spellings seen in the catalog and in designs: "TSMC 4N", "N4P", "5nm", "GF 14nm", "N3E".
_NODE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\b(?:n|tsmc\s*)?(?:16|14|12)\s*(?:nm|ff|lpp)?\b|\b(?:16|14|12)nm", "n16"),
    (r"\bn7\b|\b7\s*nm\b|\bn7p\b", "n7"),
    (r"\bn6\b|\b6\s*nm\b", "n6"),
    (r"\b4np?\b|\bn4[px]?\b|\b4\s*nm\b", "n4"),
    (r"\bn5[p]?\b|\b5\s*nm\b", "n5"),
    (r"\bn3[epbx]?\b|\b3\s*nm\b", "n3"),
    (r"\bn2[p]?\b|\b2\s*nm\b|\ba16\b", "n2"),
)


def parse_node(text: str | None) -> str | None:
    """The node id of a design or catalog process string; None when it names no known node.

    The first node named wins ("TSMC N5 (XCD) + N6 (IOD)" is n5: the compute silicon)."""
    if not text:
        return None
    low = text.strip().lower()
    if low in NODES:
        return low
    best: tuple[int, str] | None = None
    for pattern, node in _NODE_PATTERNS:
        m = re.search(pattern, low)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), node)
    return best[1] if best else None


def parse_memory(text: str | None) -> str | None:
    """A memory type key ("HBM3E", "LPDDR5"...) from a design or catalog string; None if unknown."""
    if not text:
        return None
    low = text.lower().replace(" ", "")
    if low.startswith(("none", "sram")):
        return "none"
    for name in sorted(MEMORY_TYPES, key=len, reverse=True):
        if low.startswith(name.lower()):
            return name
    if low.startswith("hbm"):
        return "HBM3"  # unspecified HBM generation: take the common one
    return None


def silicon_fit() -> dict[str, dict[str, float]]:
    """The silicon model's two fitted scales (logic area, operand energy) with their spread."""
    return catalog.silicon_fit()
