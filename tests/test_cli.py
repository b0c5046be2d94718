"""The command line: output shape, exit codes, one-line errors, atomic writes."""

import json

import pytest
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
    same = runner.invoke(app, ["predict", "--queries", str(f), "--json"])   # JSON either way: one object a query
    assert same.exit_code == 0 and same.stdout == r.stdout


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


def test_validate_json_table(tmp_path, calibration_lines):
    r = runner.invoke(app, ["validate", "--data", "data/measured/calibration.jsonl", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    overall = [row for row in out["rows"] if row["scenario"] == "all"][0]
    assert overall["count"] >= 175
    assert "--leave-one-hardware-out" in _one_line_error(["validate", "--data", "data/measured/calibration.jsonl",
                                                         "--fit-extra", "data/measured/gpu-h100/steps-fit.jsonl"])


def _one_line_error(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (args, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    return lines[0]


def test_silicon_tco_breakeven_commands(tmp_path):
    r = runner.invoke(app, ["silicon", "inference-hbm", "--samples", "2000"])
    assert r.exit_code == 0, r.output
    assert "yield" in r.stdout and "TDP estimate" in r.stdout and "NRE" in r.stdout
    r = runner.invoke(app, ["silicon", "--check"])
    assert r.exit_code == 0 and "median |error|" in r.stdout
    r = runner.invoke(app, ["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "1024",
                            "--output-len", "256", "--samples", "2000"])
    assert r.exit_code == 0, r.output
    assert "capex share" in r.stdout and "cloud rental" in r.stdout
    r = runner.invoke(app, ["breakeven", "--design", "inference-hbm", "--gpu", "h100-sxm", "--model", "llama-3.1-8b",
                            "--input-len", "1024", "--output-len", "256", "--samples", "2000"])
    assert r.exit_code == 0, r.output
    assert "break-even volume" in r.stdout


def test_tco_prices_the_network_by_cluster_size():
    base = ["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "1024", "--output-len", "256",
            "--samples", "0", "--json"]
    small, big = (json.loads(runner.invoke(app, [*base, "--cluster", n]).stdout) for n in ("8", "100000"))
    assert small["network"]["scaleout_tiers"] == 1 and big["network"]["scaleout_tiers"] == 3
    assert small["network"]["scaleup_kind"] == "nvlink" and small["network"]["usd_per_accelerator"]["scaleup"] > 0
    assert big["usd_per_mtok_out"]["p50"] > small["usd_per_mtok_out"]["p50"]
    r = runner.invoke(app, ["tco", "--hardware", "gb200", "--model", "llama-3.1-8b", "--input-len", "1024",
                            "--output-len", "256", "--samples", "0"])
    assert r.exit_code == 0 and "network per accelerator" in r.stdout, r.output
    assert "error:" in _one_line_error([*base, "--cluster", "0"])


def test_design_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("node: n5\nclock_ghz: [1\n")
    assert "not valid YAML" in _one_line_error(["silicon", str(bad)])
    bad.write_text("node: n9\nclock_ghz: 1\ncores: 4\nmatrix: {rows: 8, cols: 8, precisions: {bf16: 1}}\n")
    assert "'node'" in _one_line_error(["silicon", str(bad)])
    bad.write_text("node: n5\nclock_ghz: 1\ncores: 2048\nmatrix: {rows: 64, cols: 64, precisions: {bf16: 1}}\n")
    assert "chiplets.count" in _one_line_error(["silicon", str(bad)])
    bad.write_text("node: n5\nclock_ghz: 1\ncores: 4\nmatrix: {rows: 8, cols: 8, precisions: {bf16: 1}}\n"
                   "memory: {type: HBM3E, stacks: 30, gb_per_stack: 24}\n")
    assert "memory.stacks" in _one_line_error(["tco", "--hardware", str(bad), "--input-len", "9", "--output-len", "9"])
    bad.write_text("node: n5\nclock_ghz: 1\ncores: 4\nmatrix: {rows: 8, cols: 8, precisions: {bf17: 1}}\n")
    assert "matrix.precisions" in _one_line_error(["predict", "--scenario", "memcopy", "--hardware", str(bad)])
    assert "preset" in _one_line_error(["tco", "--hardware", "h100-sxm", "--workload", "nosuch"])


def test_predict_moe_bad_input_names_the_field():
    base = ["predict", "--scenario", "static", "--hardware", "h200", "--model", "deepseek-r1", "--devices", "8",
            "--precision", "fp8", "--input-len", "1000", "--output-len", "100", "--batch", "8"]
    cases = [(["--tp", "8", "--ep", "3"], "ep"), (["--tp", "8", "--mtp", "9"], "mtp"),
             (["--tp", "8", "--mtp", "1", "--accept", "3"], "accept")]
    for extra, field in cases:
        r = runner.invoke(app, base + extra)
        assert r.exit_code == 2 and field in r.stderr and len(r.stderr.strip().splitlines()) == 1, (extra, r.stderr)
    r = runner.invoke(app, ["predict", "--scenario", "static", "--hardware", "h200", "--model", "llama-3.1-8b",
                            "--input-len", "100", "--output-len", "10", "--mtp", "1"])
    assert r.exit_code == 2 and "mtp" in r.stderr
    r = runner.invoke(app, ["predict", "--scenario", "static", "--hardware", "a100-sxm", "--model", "llama-3.1-8b",
                            "--precision", "fp8", "--input-len", "100", "--output-len", "10"])
    assert r.exit_code == 2 and "precision" in r.stderr


def test_predict_ep_and_mtp_move_the_answer():
    def tps(*extra):
        r = runner.invoke(app, ["predict", "--scenario", "static", "--hardware", "h200", "--model", "deepseek-r1",
                                "--devices", "8", "--precision", "fp8", "--input-len", "1000", "--output-len", "200",
                                "--batch", "256", *extra])
        assert r.exit_code == 0, r.stderr
        return json.loads(r.stdout)["predicted"]["output_tokens_per_s"]
    tp8 = tps("--tp", "8")
    assert tps("--tp", "1", "--ep", "8") != tp8
    assert tps("--tp", "8", "--mtp", "2") > tp8


@pytest.mark.parametrize("args, needle", [
    (["design", "--report", "/missing/dir/r.html"], "does not exist"),
    (["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "10", "--output-len", "10",
      "--rate", "1", "--records", "/dev/null"], "not a regular file"),
    (["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "10", "--output-len", "10",
      "--rate", "1", "--timeline", "/"], "not a regular file"),
])
def test_output_paths_are_checked_before_any_work(args, needle):
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_output_path_through_a_symlink_is_refused(tmp_path):
    target = tmp_path / "real.html"
    target.write_text("x")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    r = runner.invoke(app, ["design", "--report", str(link)])
    assert r.exit_code == 2 and "symbolic link" in r.stderr
    assert target.read_text() == "x"


@pytest.mark.parametrize("args, needle", [
    (["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "10", "--output-len", "10",
      "--volume", "nan"], "--volume nan"),
    (["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "10", "--output-len", "10",
      "--volume", "-5"], "--volume -5"),
    (["breakeven", "--design", "inference-hbm", "--input-len", "10", "--output-len", "10", "--demand", "nan"],
     "--demand nan"),
    (["silicon", "inference-hbm", "--volume", "inf"], "--volume inf"),
    (["compare", "--model", "llama-3.1-8b", "--input-len", "inf", "--output-len", "10"], "--input-len inf"),
])
def test_number_flags_must_be_finite_and_sensible(args, needle):
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_version_and_model_list():
    from tokenfab import __version__
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"tokenfab {__version__}"
    r = runner.invoke(app, ["model", "list"])
    assert r.exit_code == 0 and "deepseek-v3" in r.stdout and "MoE, MLA" in r.stdout


def test_every_option_of_every_command_says_what_it_is():
    import typer.main
    cmd = typer.main.get_command(app)
    missing = []
    for name, sub in cmd.commands.items():
        for sub_name, c in (sub.commands.items() if hasattr(sub, "commands") else [(name, sub)]):
            missing += [f"{name} {sub_name} {p.opts}" for p in c.params
                        if p.param_type_name == "option" and not getattr(p, "help", None)]
    assert not missing, missing


def strict_json(text: str) -> dict:
    """What `--json` promises: the whole of stdout is one JSON object, with no NaN or Infinity in it."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")
    obj = json.loads(text, parse_constant=refuse)
    assert isinstance(obj, dict), type(obj)
    return obj


@pytest.mark.parametrize("args, key", [
    (["hardware", "list"], "accelerators"),
    (["hardware", "show", "h100-sxm"], "dense_tflops"),
    (["model", "list"], "models"),
    (["model", "show", "mixtral-8x7b"], "kv_bytes_per_token"),
    (["compare", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "512", "--output-len", "128"],
     "options"),
    (["silicon", "inference-hbm", "--samples", "200"], "area_mm2"),
    (["silicon", "--check"], "median_abs_error"),
    (["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "1024", "--output-len", "256",
      "--samples", "200"], "usd_per_mtok_out"),
    (["breakeven", "--design", "inference-hbm", "--model", "llama-3.1-8b", "--input-len", "1024", "--output-len",
      "256", "--samples", "200"], "break_even_years"),
    (["results", "--db", "{tmp}/none.duckdb"], "runs"),
    (["predict", "--scenario", "memcopy", "--hardware", "h200"], "predicted"),
])
def test_every_answering_command_prints_one_strict_json_object(tmp_path, args, key):
    r = runner.invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--json"])
    assert r.exit_code == 0, r.output
    assert key in strict_json(r.stdout)


def test_json_bands_are_numbers_and_never_becomes_null():
    r = runner.invoke(app, ["breakeven", "--design", "inference-hbm", "--model", "llama-3.1-8b", "--input-len",
                            "1024", "--output-len", "256", "--samples", "200", "--json"])
    be = strict_json(r.stdout)
    band = be["custom"]["usd_per_mtok_out"]
    assert set(band) == {"p10", "p50", "p90"} and band["p10"] <= band["p50"] <= band["p90"]
    assert all(v is None or isinstance(v, float) for v in be["break_even_years"].values())   # inf: never -> null
    silicon = strict_json(runner.invoke(app, ["silicon", "inference-hbm", "--samples", "200", "--json"]).stdout)
    assert set(silicon["tdp_estimate_w"]) == {"nominal", "p10", "p50", "p90"}


def test_print_json_is_strict_through_nested_values(capsys):
    import numpy as np

    from tokenfab.cli_io import print_json
    print_json({"a": float("nan"), "b": (1.0, float("inf")), "c": [{"d": np.float32(2.5)}], "e": np.array([1, 2]),
                "f": np.float64("-inf"), "g": np.int64(3)})
    assert strict_json(capsys.readouterr().out) == {"a": None, "b": [1.0, None], "c": [{"d": 2.5}], "e": [1, 2],
                                                    "f": None, "g": 3}


def test_fleet_and_results_json(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps({
        "name": "tiny", "model": "llama-3.1-8b", "start": "2026-01", "months": 6, "requests_per_probe": 200,
        "demand": [{"name": "chat", "preset": "chat", "tokens_per_day": 2e10}],
        "hardware": {"buy": [{"id": "h100-sxm", "lead_time_months": 1, "supply_per_month": 400}],
                     "rent": [{"id": "h100-sxm", "available": 300}]},
        "datacenter": {"capacity_mw": 2.0}}))   # JSON is YAML
    db = tmp_path / "r.duckdb"
    r = runner.invoke(app, ["fleet", str(plan), "--store", str(db), "--no-cache", "--no-bargaining", "--json"])
    assert r.exit_code == 0, r.output
    fleet = strict_json(r.stdout)
    assert fleet["scenarios"][0]["total_cost_usd"] > 0 and len(fleet["base_plan"]["usd_per_mtok"]) == 6
    listed = strict_json(runner.invoke(app, ["results", "--db", str(db), "--json"]).stdout)
    assert [run["id"] for run in listed["runs"]] == [fleet["run_id"]]
    csv = tmp_path / "p.csv"
    shown = strict_json(runner.invoke(app, ["results", fleet["run_id"], "--db", str(db), "--export", str(csv),
                                            "--json"]).stdout)
    assert shown["points"] == fleet["rows"] and shown["export"] == str(csv) and csv.stat().st_size > 0
