"""`step_cost()`: the one step-cost function behind the analytic screen and the serving simulator."""

from __future__ import annotations

from tokenfab.deployment import Deployment
from tokenfab.hardware import Chip
from tokenfab.model import ModelSpec
from tokenfab.perf.ops import build_ops
from tokenfab.perf.params import EffParams, shipped_calibration
from tokenfab.perf.shapes import StepShapes
from tokenfab.perf.timing import StepCost, time_ops


def step_cost(model: ModelSpec, chip: Chip, dep: Deployment, steps: StepShapes,
              params: EffParams | None = None) -> StepCost:
    """Time, energy and breakdown of each step in `steps` (vectorised over steps)."""
    params = params or shipped_calibration().for_chip(chip)
    return time_ops(build_ops(model, chip, dep, steps), chip, params, dep.engine)
