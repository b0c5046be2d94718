"""`tokenfab results`: list, show and export the runs a fleet plan stored."""

import json

from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_fleet_and_results_json(tmp_path, strict_json):
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
    listed = strict_json(runner.invoke(app, ["results", "--store", str(db), "--json"]).stdout)
    assert [run["id"] for run in listed["runs"]] == [fleet["run_id"]]
    csv = tmp_path / "p.csv"
    shown = strict_json(runner.invoke(app, ["results", fleet["run_id"], "--store", str(db), "--export", str(csv),
                                            "--json"]).stdout)
    assert shown["points"] == fleet["rows"] and shown["export"] == str(csv) and csv.stat().st_size > 0
