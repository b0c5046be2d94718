"""The fit: it improves on datasheet priors on data it did not see, and the shipped profile is reproducible."""

import numpy as np
import pytest

from tokenfab.calibrate import fit_calibration
from tokenfab.perf.params import UNCALIBRATED, shipped_calibration
from tokenfab.validate import ENGINE_SCENARIOS, score_in_sample


def _median_abs(scored, scenarios=ENGINE_SCENARIOS):
    return float(np.median([abs(s.error) for s in scored if s.scenario in scenarios]))


def test_fit_on_half_predicts_the_other_half(measured_points):
    train = [p for i, p in enumerate(measured_points) if i % 2 == 0]
    test = [p for i, p in enumerate(measured_points) if i % 2 == 1]
    cal = fit_calibration(train)
    fitted = _median_abs(score_in_sample(test, cal))
    priors = _median_abs(score_in_sample(test, UNCALIBRATED))
    assert fitted < 0.12
    assert fitted < priors


def test_shipped_calibration_is_the_fit_of_the_shipped_data(shipped_fit_points):
    shipped = shipped_calibration()
    refit = fit_calibration(shipped_fit_points)
    assert shipped.provenance["points"] == len(shipped_fit_points)
    for name in ("gemm_eff", "mem_eff", "attn_eff", "t_step"):
        assert getattr(refit.global_params, name) == pytest.approx(getattr(shipped.global_params, name), rel=1e-6)
    assert set(refit.family) == set(shipped.family)


def test_unmeasured_family_gets_global_parameters():
    from tokenfab.hardware import load_chip
    cal = shipped_calibration()
    assert cal.for_chip(load_chip("tpu-v6e")) == cal.global_params
    assert "google-tpu" not in cal.family
