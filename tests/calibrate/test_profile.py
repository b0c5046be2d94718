"""Device profile fit, without a device: step times and microbenchmarks made by the model itself from
known parameters on an H100 grid must be recovered, and predicted on the held-back half."""

import json

import numpy as np
import pytest

from tokenfab.calibrate.holdout import run_holdout
from tokenfab.calibrate.microbench import Microbench, _row, gemm_shapes
from tokenfab.calibrate.model_bench import GPU_GRID, StepTime, step_row
from tokenfab.calibrate.profile import check_writable, profile_json, split_halves, write_json_atomic
from tokenfab.calibrate.runner import DeviceRun
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf.params import load_calibration, shipped_calibration
from tokenfab.predict import plan_query
from tokenfab.queries import parse_query

CHIP = load_chip("h100-sxm")
SPEC = load_model("llama-3.1-8b")
# a "device" unlike the published fit: what calibration has to find
TRUTH = shipped_calibration().for_chip(CHIP).with_(
    gemm_eff=0.62, mem_eff=0.78, kv_mem_eff=0.55, attn_eff=0.38, elem_scale=2.5, t_step=3e-5, t_layer=2.2e-5,
    gemm_m_half=40.0, t_kernel=6e-6)


def _measure(row, rng):
    """What the device 'measures': the model's own answer under TRUTH, with 1% timing noise."""
    metric = row["metric"]
    value = plan_query(parse_query(row)).evaluate(TRUTH)[metric]
    return {**row, "value": float(value * (1 + 0.01 * rng.standard_normal()))}


@pytest.fixture(scope="module")
def synthetic_run():
    rng = np.random.default_rng(0)
    steps = [step_row(StepTime("decode", b, n, 1.0, "cudagraph"), "h100-sxm", "llama-3.1-8b", "pytorch-2.5")
             for b, n in GPU_GRID.decode_points()]
    steps += [step_row(StepTime("prefill", b, n, 1.0, "cudagraph"), "h100-sxm", "llama-3.1-8b", "pytorch-2.5")
              for b, n in GPU_GRID.prefill_points()]
    micro = Microbench(kernel_s=8e-6, memcopy_bw=CHIP.mem_bw * TRUTH.mem_eff)
    micro.rows = [_row("h100-sxm", "pytorch-2.5", f"g{m}x{n}x{k}", "gemm", "gemm_tflops", 1.0, "bf16",
                       {"m": m, "n": n, "k": k}, "synthetic") for m, n, k in gemm_shapes(SPEC, "cuda")]
    micro.rows.append(_row("h100-sxm", "pytorch-2.5", "copy", "memcopy", "memcopy_tbps", 1.0, None,
                           {"kernel": "copy"}, "synthetic"))
    micro.rows = [_measure(r, rng) for r in micro.rows]
    steps = [_measure(r, rng) for r in steps]
    return DeviceRun(CHIP, None, SPEC, "llama-3.1-8b", micro, steps, {"device": "synthetic", "date": "2026-01-01"})


@pytest.fixture(scope="module")
def holdout(synthetic_run):
    return run_holdout(synthetic_run, shipped_calibration())


def test_split_is_a_checkerboard_covering_the_grid(synthetic_run):
    fit, check = split_halves(synthetic_run.steps)
    assert len(fit) + len(check) == len(synthetic_run.steps) and abs(len(fit) - len(check)) <= 2
    assert not {r["id"] for r in fit} & {r["id"] for r in check}
    for half in (fit, check):  # both halves span every batch size and every length
        assert {r["batch"] for r in half} == {r["batch"] for r in synthetic_run.steps}
        assert {r["input_len"] for r in half} == {r["input_len"] for r in synthetic_run.steps}


def test_held_out_half_is_predicted_within_the_issue_targets(holdout):
    cal = holdout.report["held_out"]["calibrated"]
    assert cal["decode"]["median_abs"] <= 0.03 and cal["prefill"]["median_abs"] <= 0.05
    assert all(holdout.report["targets"]["met"].values())
    for other in ("uncalibrated", "published_fit"):
        worse = holdout.report["held_out"][other]
        assert worse["decode"]["median_abs"] > 2 * cal["decode"]["median_abs"]


def test_fit_recovers_what_the_microbenchmarks_pin_down(holdout):
    # weight streaming and fixed per-step costs trade off for a single model, so only the predictions
    # (above) and the parameters a microbenchmark isolates are checked one by one
    fitted = holdout.profile.for_chip(CHIP)
    assert fitted.gemm_eff == pytest.approx(TRUTH.gemm_eff, rel=0.1)
    assert fitted.t_kernel == pytest.approx(TRUTH.t_kernel, rel=0.1)


def test_profile_changes_only_its_device(holdout):
    shipped = shipped_calibration()
    assert holdout.profile.for_chip(load_chip("mi300x")) == shipped.for_chip(load_chip("mi300x"))
    assert holdout.profile.for_chip(load_chip("h200")) == shipped.for_chip(load_chip("h200"))
    assert holdout.profile.for_chip(CHIP) != shipped.for_chip(CHIP)


def test_profile_round_trips_with_provenance(holdout, synthetic_run, tmp_path):
    path = tmp_path / "profile.json"
    write_json_atomic(path, profile_json(holdout.profile, synthetic_run.microbench))
    loaded = load_calibration(str(path))
    assert loaded.for_chip(CHIP) == holdout.profile.for_chip(CHIP)
    prov = json.loads(path.read_text())["provenance"]["device_profile"]
    assert prov["hardware"] == "h100-sxm" and prov["date"] and prov["points"]["steps"] == len(holdout.fit_rows)
    assert [p.name for p in tmp_path.iterdir()] == ["profile.json"]  # no temporary file left


def test_check_writable_refuses_before_measuring(tmp_path):
    with pytest.raises(OSError):
        check_writable(tmp_path / "missing" / "profile.json")
    with pytest.raises(OSError):
        check_writable(tmp_path)
    check_writable(tmp_path / "profile.json")



def test_gpu_script_refits_saved_measurements(synthetic_run, tmp_path):
    """benchmarks/gpu_calibrate.py --refit: a GPU run's saved files can be fitted and checked again here."""
    import importlib.util
    from pathlib import Path

    from tokenfab.calibrate.profile import write_jsonl_atomic
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_calibrate.py"
    spec = importlib.util.spec_from_file_location("gpu_calibrate", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    prov = {**synthetic_run.provenance, "model": "llama-3.1-8b"}
    write_json_atomic(tmp_path / "microbench.json", {"provenance": prov, "chip_record": None,
                                                     **synthetic_run.microbench.to_json()})
    write_jsonl_atomic(tmp_path / "steps.jsonl", synthetic_run.steps)
    assert script.main([str(tmp_path), "--refit"]) == 0
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["hardware"] == "h100-sxm" and all(report["targets"]["met"].values())
    for name in ("profile.json", "profile-half.json", "steps-fit.jsonl", "steps-check.jsonl"):
        assert (tmp_path / name).is_file()
    assert load_calibration(str(tmp_path / "profile.json")).hardware["h100-sxm"]
