"""`tokenfab calibrate` and `tokenfab validate`: atomic profile writes, the error table."""

import json

from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_calibrate_writes_profile_atomically(tmp_path, calibration_lines, strict_json):
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
    # several files fit together; a bad one among them still leaves nothing behind
    r = runner.invoke(app, ["calibrate", "--data", str(data), "--data", str(bad), "--out", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "bad.jsonl" in r.stderr and not (tmp_path / "x.json").exists()
    memcopy = tmp_path / "memcopy.jsonl"
    memcopy.write_text("\n".join(line for line in calibration_lines if '"memcopy"' in line))
    r = runner.invoke(app, ["calibrate", "--data", str(data), "--data", str(memcopy), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    said = strict_json(r.stdout)
    assert said["out"] == str(out) and said["data"] == [str(data), str(memcopy)] and said["skipped"] >= 0
    both = json.loads(out.read_text())["provenance"]
    assert said["points_fitted"] == both["points"]
    assert both["points"] == profile["provenance"]["points"] + sum('"memcopy"' in x for x in calibration_lines)
    assert "memcopy.jsonl" in both["data"]


def test_validate_json_table(tmp_path, calibration_lines, one_line_error):
    r = runner.invoke(app, ["validate", "--data", "data/measured/calibration.jsonl", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    overall = [row for row in out["rows"] if row["scenario"] == "all"][0]
    assert overall["count"] >= 175
    assert "--leave-one-hardware-out" in one_line_error(["validate", "--data", "data/measured/calibration.jsonl",
                                                        "--fit-extra", "data/measured/gpu-h100/steps-fit.jsonl"])
