"""The component energy model in the step cost, and its check against published measurements."""

from pathlib import Path

from tokenfab.energy_check import check, median_abs_error
from tokenfab.predict import predict_one
from tokenfab.queries import parse_query

ENERGY = Path(__file__).resolve().parents[2] / "data" / "measured" / "energy.csv"


def _offline(hw, **kw):
    q = parse_query({"scenario": "offline", "hardware": hw, "model": "llama-3.1-8b", "input_len": 1024,
                     "output_len": 256, "precision": "fp8", **kw})
    return predict_one(q)["predicted"]


def test_offline_answers_carry_energy_and_stay_under_tdp():
    p = _offline("h100-sxm")
    assert 0 < p["avg_power_w"] <= 700
    assert p["joules_per_output_token_wall"] > p["joules_per_output_token"] > 0
    # a chip kept busier draws more power
    assert _offline("h100-sxm", max_batch=256)["avg_power_w"] > _offline("h100-sxm", max_batch=4)["avg_power_w"]


def test_designs_predict_like_catalog_chips():
    a, b = _offline("h100-sxm"), _offline("h100-like")
    assert abs(b["output_tokens_per_s"] / a["output_tokens_per_s"] - 1) < 0.10


def test_power_matches_published_measurements():
    rows = check(ENERGY)
    assert sum(r.power_error is not None for r in rows) >= 8
    assert median_abs_error(rows, power=True) < 0.25
