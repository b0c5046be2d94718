"""Custom silicon: a `ChipDesign` -> area, yield, unit cost, NRE, power -> a `Chip`.

`design` (the schema), `area`, `cost`, `power` (the physical models), `build` (report and `Chip`),
`fit` (the four fitted figures and the leave-one-out check on published chips).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from tokenfab.catalog import UnknownIdError
from tokenfab.hardware import Chip, load_chip
from tokenfab.silicon.build import DEFAULT_VOLUME, SiliconReport, analyse, to_chip
from tokenfab.silicon.design import (
    ChipDesign,
    DesignError,
    is_design_ref,
    load_design,
    parse_design,
    resolve_design,
    shipped_designs,
)


@cache
def _design_chip(spec: str) -> Chip:
    chip = to_chip(resolve_design(spec))
    return replace(chip, sources={**chip.sources, "design_path": spec})


def resolve_chip(spec: str) -> Chip:
    """A catalog accelerator id, or a design (YAML path or shipped design id) turned into a `Chip`.

    Raises `KeyError` (unknown id) or `DesignError` (a design that cannot be built)."""
    if is_design_ref(spec):
        return _design_chip(spec)
    try:
        return load_chip(spec)
    except KeyError as err:
        raise UnknownIdError(f"{err}; or a chip design YAML (shipped: {', '.join(sorted(shipped_designs()))})") \
            from None


__all__ = ["DEFAULT_VOLUME", "ChipDesign", "DesignError", "SiliconReport", "analyse", "load_design", "parse_design",
           "resolve_chip", "resolve_design", "to_chip"]
