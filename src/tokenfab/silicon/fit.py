"""The silicon model's fitted figures, and its leave-one-out check on published chips.

Everything in the area and power models comes from catalog constants except four figures no
datasheet gives: the area of one operand port of a matrix array in MAC cells (`operand_port_cells`:
the delivery logic on each row and column of an array, which is what makes a GPU core's small tensor
cores cost more per MAC than a large systolic array), the fixed control block of a package
(`control_block_mm2`), how much operand delivery adds to the arithmetic energy
(`operand_energy_factor`) and static watts per mm2 (`static_w_per_mm2`). They are fitted, two for area
and two for power, by least squares on log error over the reference chips (shipped designs with a
`reference:` block of published area/TDP). The check predicts each chip with figures fitted on the
others only; the spread of those errors is the model error the Monte Carlo draws.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from tokenfab import catalog
from tokenfab.constants import Draws
from tokenfab.silicon import area as A
from tokenfab.silicon import power as P
from tokenfab.silicon.design import ChipDesign, load_design, shipped_designs


def reference_designs() -> list[ChipDesign]:
    """Shipped designs that describe published chips (they carry a `reference:` block)."""
    designs = [load_design(path) for _, path in sorted(shipped_designs().items())]
    return [dsg for dsg in designs if dsg.reference is not None]


@dataclass(frozen=True)
class _Terms:
    """A reference chip: its published figures and the power terms the fitted figures multiply."""

    design: ChipDesign
    area: float | None
    tdp: float | None
    compute_w: float         # arithmetic-only matrix + vector power
    fixed_w: float           # DRAM, SRAM, links (inside the TDP's scope)
    delivery: float          # watts drawn per watt reaching the silicon (regulator loss of a module TDP)


def _terms(design: ChipDesign) -> _Terms:
    d = Draws()
    matrix, vector = P.compute_power_bare(design, d)
    ref = design.reference
    assert ref is not None
    # like with like: a published TDP is drawn at the clock the chip sustains under that load, not at its boost
    clock = (ref.tdp_clock_ghz or design.clock_ghz) / design.clock_ghz
    fixed = float(sum(P.fixed_dynamic_power(design, d)))
    if ref.tdp_scope == "package":
        fixed -= float(P.offpackage_dram_w(design, d))
    return _Terms(design, ref.die_area_mm2, ref.tdp_w, float(matrix + vector) * clock, fixed,
                  P.delivery_factor(ref.tdp_scope))


def _area(p: np.ndarray, t: _Terms) -> float:
    """Silicon area of all dies with operand-port area p[0] (MAC cells) and control block p[1] (mm2).

    Not linear in them: a stacked base die is as large as the dies on it or its own content."""
    return float(A.total_area(A.die_areas(t.design, Draws(), port=float(p[0]), block=float(p[1]))))


def _tdp(p: np.ndarray, t: _Terms, area: float) -> float:
    return (p[0] * t.compute_w + t.fixed_w + p[1] * area) * t.delivery


def _least_squares(residual, x0: list[float]) -> np.ndarray:
    """Minimise the summed squared log errors over non-negative parameters (Nelder-Mead, deterministic)."""
    def loss(p: np.ndarray) -> float:
        return 1e9 if np.any(p < 0) else residual(p)
    return minimize(loss, np.asarray(x0), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10}).x


def _fit_terms(terms: list[_Terms]) -> dict[str, float]:
    with_area = [t for t in terms if t.area]
    pa = _least_squares(lambda p: sum(np.log(_area(p, t) / t.area) ** 2 for t in with_area), [30.0, 100.0])
    sized = [(t, t.area or _area(pa, t)) for t in terms if t.tdp]
    pp = _least_squares(lambda p: sum(np.log(_tdp(p, t, a) / t.tdp) ** 2 for t, a in sized), [1.0, 0.1])
    return {"operand_port_cells": float(pa[0]), "control_block_mm2": float(pa[1]),
            "operand_energy_factor": float(pp[0]), "static_w_per_mm2": float(pp[1])}


def fit(designs: list[ChipDesign] | None = None) -> dict[str, float]:
    """The four fitted figures over `designs` (default: all reference chips)."""
    designs = reference_designs() if designs is None else designs
    return _fit_terms([_terms(dsg) for dsg in designs])


@dataclass(frozen=True)
class CheckRow:
    """One published chip predicted by scales fitted on the other chips."""

    id: str
    name: str
    node: str
    area_mm2: float | None
    area_pred: float | None
    tdp_w: float | None
    tdp_pred: float | None

    @property
    def area_err(self) -> float | None:
        return None if self.area_mm2 is None else self.area_pred / self.area_mm2 - 1.0

    @property
    def tdp_err(self) -> float | None:
        return None if self.tdp_w is None else self.tdp_pred / self.tdp_w - 1.0


def leave_one_out() -> list[CheckRow]:
    """Predict each reference chip's area and TDP with figures fitted on all the others.

    The TDP of a chip whose area is published is predicted from its predicted area, not the real one."""
    designs = reference_designs()
    terms = [_terms(dsg) for dsg in designs]
    rows = []
    for i, (design, t) in enumerate(zip(designs, terms, strict=True)):
        p = _fit_terms(terms[:i] + terms[i + 1:])
        area = _area(np.array([p["operand_port_cells"], p["control_block_mm2"]]), t)
        tdp = _tdp(np.array([p["operand_energy_factor"], p["static_w_per_mm2"]]), t, area)
        rows.append(CheckRow(design.id, design.label, design.node, t.area, area if t.area else None, t.tdp,
                             tdp if t.tdp else None))
    return rows


def median_errors(rows: list[CheckRow]) -> tuple[float, float]:
    """Median |error| of area and of TDP over the chips that publish each."""
    area = [abs(r.area_err) for r in rows if r.area_err is not None]
    tdp = [abs(r.tdp_err) for r in rows if r.tdp_err is not None]
    return float(np.median(area)), float(np.median(tdp))


def write_fit(path: Path | None = None) -> dict[str, object]:
    """Refit on all references and write the shipped fit file (what `tokenfab silicon --refit` does):
    the four figures and the P10/P90 of the leave-one-out errors, which the Monte Carlo draws."""
    figures = fit()
    rows = leave_one_out()
    area_err = [r.area_err for r in rows if r.area_err is not None]
    tdp_err = [r.tdp_err for r in rows if r.tdp_err is not None]
    result: dict[str, object] = {name: {"value": round(v, 6)} for name, v in figures.items()}
    for name, errs in (("area_error", area_err), ("tdp_error", tdp_err)):
        p10, p90 = np.percentile(errs, [10, 90])
        result[name] = {"p10": round(float(p10), 6), "p90": round(float(p90), 6),
                        "median_abs": round(float(np.median(np.abs(errs))), 6)}
    result["provenance"] = {"references": [dsg.id for dsg in reference_designs()],
                            "method": "least squares on log error; errors are leave-one-out"}
    target = path or Path(str(catalog.DATA / "silicon_fit.json"))
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    tmp.replace(target)
    catalog.silicon_fit.cache_clear()
    return result


__all__ = ["CheckRow", "fit", "leave_one_out", "median_errors", "reference_designs", "write_fit"]
