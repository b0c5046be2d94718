"""Shared fixtures: the measured calibration data shipped in the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_DATA = ROOT / "data" / "measured" / "calibration.jsonl"
# the shipped fit also uses the fit half of our own H100 run; the other half stays held out
GPU_FIT_DATA = ROOT / "data" / "measured" / "gpu-h100" / "steps-fit.jsonl"


@pytest.fixture(scope="session")
def calibration_lines() -> list[str]:
    return CALIBRATION_DATA.read_text().splitlines()


@pytest.fixture(scope="session")
def calibration_rows(calibration_lines) -> list[dict]:
    return [json.loads(line) for line in calibration_lines if line.strip()]


@pytest.fixture(scope="session")
def measured_points(calibration_lines):
    from tokenfab.calibrate import load_measured
    points, _skipped = load_measured(calibration_lines)
    return points


@pytest.fixture(scope="session")
def shipped_fit_points(calibration_lines):
    """What the shipped calibration was fitted on: the published measurements plus our GPU run's fit half."""
    from tokenfab.calibrate import load_measured
    points, _skipped = load_measured(calibration_lines + GPU_FIT_DATA.read_text().splitlines())
    return points
