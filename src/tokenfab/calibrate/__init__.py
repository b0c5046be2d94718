"""Fit the step-cost model's efficiency parameters to measurements (`fit.py`)."""

from tokenfab.calibrate.fit import FitResult, fit_calibration, load_measured

__all__ = ["FitResult", "fit_calibration", "load_measured"]
