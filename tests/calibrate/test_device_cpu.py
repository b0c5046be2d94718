"""The whole device path on a CPU, as CI runs it: calibrate --device cpu, then predict and validate with
the profile it wrote, and the held-out check of benchmarks/gpu_calibrate.py."""

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from tokenfab.calibrate import runner as device_runner  # noqa: E402
from tokenfab.calibrate.holdout import run_holdout  # noqa: E402
from tokenfab.calibrate.microbench import Microbench  # noqa: E402
from tokenfab.calibrate.model_bench import StepGrid  # noqa: E402
from tokenfab.cli import app  # noqa: E402
from tokenfab.hardware import chip_from_record  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.perf.params import load_calibration, shipped_calibration  # noqa: E402

cli = CliRunner()
SMALL = StepGrid((1, 4, 16), (32, 128, 512), (1, 4), (32, 128, 512), 8192, 2048)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(device_runner, "CPU_GRID", SMALL)
        r = cli.invoke(app, ["calibrate", "--device", "cpu", "--out", str(out / "profile.json"),
                             "--steps", str(out / "steps.jsonl")])
    assert r.exit_code == 0, r.output
    return out


def test_profile_carries_the_measured_chip_and_provenance(calibrated):
    data = json.loads((calibrated / "profile.json").read_text())
    chip = chip_from_record(data["chips"]["cpu"])
    assert chip.peak("bf16") > 1e9 and chip.mem_bw > 1e8 and "measured" in chip.name
    prov = data["provenance"]["device_profile"]
    for key in ("device", "torch", "date", "cpu_name", "threads", "model", "engine", "method", "hardware"):
        assert prov[key], key
    assert data["microbench"]["rows"] and data["microbench"]["attention"]
    fitted = load_calibration(str(calibrated / "profile.json")).for_chip(chip)
    assert fitted == shipped_calibration().global_params.with_(**data["hardware"]["cpu"])


def test_steps_are_a_validate_dataset(calibrated):
    rows = [json.loads(x) for x in (calibrated / "steps.jsonl").read_text().splitlines()]
    assert len(rows) == len(SMALL.decode_points()) + len(SMALL.prefill_points())
    assert all(r["value"] > 0 for r in rows) and len({r["id"] for r in rows}) == len(rows)
    r = cli.invoke(app, ["validate", "--data", str(calibrated / "steps.jsonl"), "--calibration",
                         str(calibrated / "profile.json"), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["skipped"] == 0 and len(report["predictions"]) == len(rows)
    overall = report["rows"][-1]
    assert overall["scenario"] == "all" and overall["median_abs"] < 0.35  # in-sample, on a noisy shared CPU


def test_predict_uses_the_profile(calibrated):
    query = ["predict", "--scenario", "prefill", "--hardware", "cpu", "--model", "llama-tiny", "--input-len", "256"]
    r = cli.invoke(app, [*query, "--calibration", str(calibrated / "profile.json")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["predicted"]["ttft_ms_mean"] > 0
    r = cli.invoke(app, query)  # without the profile the CPU is no known hardware
    assert r.exit_code == 2 and "cpu" in r.stderr


def test_fit_on_half_predicts_the_other_half_better_than_datasheet_priors(calibrated):
    data = json.loads((calibrated / "profile.json").read_text())
    record = data["chips"]["cpu"]
    steps = [json.loads(x) for x in (calibrated / "steps.jsonl").read_text().splitlines()]
    run = device_runner.DeviceRun(chip_from_record(record), record, load_model("llama-tiny"), "llama-tiny",
                                  Microbench(**data["microbench"]), steps, data["provenance"]["device_profile"])
    held = run_holdout(run, shipped_calibration())
    both = [abs(p["calibrated"] / p["measured"] - 1) for p in held.report["predictions"]]
    priors = [abs(p["uncalibrated"] / p["measured"] - 1) for p in held.report["predictions"]]
    both.sort()
    priors.sort()
    median, prior_median = both[len(both) // 2], priors[len(priors) // 2]
    assert median < 0.4 and median < prior_median


@pytest.mark.parametrize("args, says", [
    (["--device", "tpu"], "allowed cpu, cuda"),
    (["--device", "cuda"], "--device cuda"),
    (["--device", "cpu", "--hardware", "h100-sxm"], "--hardware"),
    (["--device", "cpu", "--model", "mixtral-8x7b"], "dense Llama"),
    (["--device", "cpu", "--out", "/nonexistent-dir/profile.json"], "--out"),
    (["--device", "cpu", "--data", "x.jsonl"], "not both"),
    ([], "--device"),
])
def test_bad_device_input_is_one_line_exit_2(args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli.invoke(app, ["calibrate", *args])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written
