"""Step-cost model: operator counts (ops), efficiency parameters (params), timing, collectives."""

from tokenfab.perf.params import Calibration, EffParams, load_calibration, shipped_calibration
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.step import step_cost
from tokenfab.perf.timing import StepCost

__all__ = ["Calibration", "EffParams", "StepCost", "StepShapes", "load_calibration", "shipped_calibration",
           "step_cost"]
