"""The command line: output shape, exit codes, one-line errors, atomic writes."""

import json

from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_predict_single_query_prints_json():
    r = runner.invoke(app, ["predict", "--scenario", "prefill", "--hardware", "h100-sxm", "--model", "llama-2-7b",
                            "--input-len", "2048", "--precision", "fp8"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["id"] == "query" and out["predicted"]["ttft_ms_mean"] > 0


def test_predict_bad_input_is_one_line_and_nonzero():
    for args in (["--hardware", "nope", "--scenario", "memcopy"],
                 ["--hardware", "h100-sxm", "--scenario", "offline", "--model", "llama-2-7b", "--input-len", "-3",
                  "--output-len", "5"],
                 ["--hardware", "h100-sxm", "--scenario", "offline", "--model", "llama-3.1-70b", "--tp", "3",
                  "--devices", "3", "--input-len", "10", "--output-len", "5"],
                 ["--hardware", "h100-sxm"]):
        r = runner.invoke(app, ["predict", *args])
        assert r.exit_code == 2, args
        assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_predict_file_reports_bad_lines_and_goes_on(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"id": "ok", "scenario": "memcopy", "hardware": "h200"}\nnot json\n'
                 '{"id": "bad", "scenario": "memcopy", "hardware": "zz"}\n')
    r = runner.invoke(app, ["predict", "--queries", str(f)])
    assert r.exit_code == 0
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["ok", "line-2", "bad"]
    assert "predicted" in lines[0] and "error" in lines[1] and "error" in lines[2]


def test_missing_queries_file():
    r = runner.invoke(app, ["predict", "--queries", "/nonexistent.jsonl"])
    assert r.exit_code == 2 and "nonexistent" in r.stderr


def test_hardware_and_model_commands():
    assert runner.invoke(app, ["hardware", "list"]).exit_code == 0
    r = runner.invoke(app, ["hardware", "show", "mi300x"])
    assert r.exit_code == 0 and "Infinity Fabric" in r.stdout
    assert runner.invoke(app, ["hardware", "show", "mi301x"]).exit_code == 2
    r = runner.invoke(app, ["model", "show", "mixtral-8x7b"])
    assert r.exit_code == 0 and "46.70 B" in r.stdout
    assert runner.invoke(app, ["model", "show", "nope"]).exit_code == 2


def test_compare_ranks_by_throughput_per_device():
    r = runner.invoke(app, ["compare", "--model", "llama-3.1-8b", "--input-len", "512", "--output-len", "128"])
    assert r.exit_code == 0, r.output
    assert "h100-sxm" in r.stdout and "b200" in r.stdout
    assert runner.invoke(app, ["compare", "--model", "llama-3.1-8b", "--input-len", "-1"]).exit_code == 2


def test_calibrate_writes_profile_atomically(tmp_path, calibration_lines):
    data = tmp_path / "subset.jsonl"
    data.write_text("\n".join(line for line in calibration_lines if '"memcopy"' in line or '"gemm"' in line))
    out = tmp_path / "profile.json"
    r = runner.invoke(app, ["calibrate", "--data", str(data), "--out", str(out)])
    assert r.exit_code == 0, r.output
    profile = json.loads(out.read_text())
    assert profile["provenance"]["points"] > 20 and "global" in profile
    assert not list(tmp_path.glob("*.tmp"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{broken\n")
    r = runner.invoke(app, ["calibrate", "--data", str(bad), "--out", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and not (tmp_path / "x.json").exists()


def test_validate_json_table(tmp_path, calibration_lines):
    r = runner.invoke(app, ["validate", "--data", "data/measured/calibration.jsonl", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    overall = [row for row in out["rows"] if row["scenario"] == "all"][0]
    assert overall["count"] >= 175
