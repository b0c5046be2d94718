"""`tokenfab design`: words for numbers that have none (a payback that never comes is said, not printed as inf),
one strict JSON object, and a stored run reused unless --fresh."""

import json
import math
import re

from tokenfab.cli.design import _payback_demand

INF = math.inf


def test_payback_demand_in_words():
    never = _payback_demand([INF, INF, INF])
    assert "never pays back" in never and "every draw" in never
    mostly = _payback_demand([2.0e10, INF, INF])
    assert "most draws" in mostly and "2e+10" in mostly
    some = _payback_demand([1.0e9, 3.0e9, INF])
    assert "from 3e+09 output tokens/day" in some and "to never" in some
    for text in (never, mostly, some, _payback_demand([1e9, 2e9, 4e9])):
        assert not re.search(r"\b(inf|nan)\b", text, re.IGNORECASE), text


def _tiny_problem(tmp_path):
    """A four-chip problem: the whole design run in a few seconds."""
    import yaml
    problem = {
        "traffic": {"mix": {"chat": 1.0}}, "models": ["llama-3.1-8b"], "assign": {},
        "demand_output_tokens_per_day": 2.0e10, "utilisation": 0.7, "template": "inference-hbm",
        "constraints": {"node": "n3", "power_w": 1500, "max_chiplets": 2, "budget_usd": None},
        "space": {"cores": [64, 128], "clock_ghz": [1.4, 2.2], "memory": ["HBM3E:8x36"], "sram_shared_mb": [128],
                  "scaleup_links": [16], "scaleup_domain": [32], "scaleout_gbps": [400]},
        "deployment": {"tp": [1, 2], "pp": [1], "weight_precision": ["fp8"], "kv_precision": ["fp8"],
                       "max_batch": [64, 256], "chunk_tokens": [2048], "disaggregated": [False]},
    }
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(problem))
    return path


def _design(tmp_path, *extra):
    from typer.testing import CliRunner

    from tokenfab.cli import app
    return CliRunner().invoke(app, ["design", "--problem", str(_tiny_problem(tmp_path)), "--exhaustive", "--top", "3",
                                    "--sim-requests", "300", "--samples", "50", "--jobs", "1", "--report",
                                    str(tmp_path / "r.html"), *extra])


def test_design_json_is_one_strict_object(tmp_path):
    # --db: the store's older name, still taken (the help lists --store only)
    r = _design(tmp_path, "--db", str(tmp_path / "r.duckdb"), "--json")
    assert r.exit_code == 0, r.output

    def refuse(name):
        raise AssertionError(f"{name} in --json output")
    summary = json.loads(r.stdout, parse_constant=refuse)
    assert isinstance(summary, dict) and summary["custom"]["label"] and len(summary["custom_band"]) == 3


def test_a_stored_run_is_reused_and_fresh_recomputes_it(tmp_path, monkeypatch):
    """The run id covers the question, the version and the data: the same design again reads its points back
    (and says so); --fresh evaluates every point again and replaces the stored run."""
    from tokenfab.search import run
    from tokenfab.store import Store
    evaluated = []

    def counting(task):
        evaluated.append(task[2])
        return evaluate(task)
    evaluate = run.eval_task
    monkeypatch.setattr(run, "eval_task", counting)
    db = tmp_path / "r.duckdb"
    first = _design(tmp_path, "--store", str(db))
    assert first.exit_code == 0, first.output
    computed = len(evaluated)
    assert computed > 4 and "computed:" in first.stdout
    (stored,) = Store(db).runs()

    evaluated.clear()
    again = _design(tmp_path, "--store", str(db))
    assert again.exit_code == 0, again.output
    assert evaluated == [] and "reused the stored run" in again.stdout and "--fresh recomputes" in again.stdout

    fresh = _design(tmp_path, "--store", str(db), "--fresh", "--json")
    assert fresh.exit_code == 0, fresh.output
    assert len(evaluated) == computed
    summary = json.loads(fresh.stdout)
    assert summary["stored"] == {"fresh": True, "points_reused": 0, "points_computed": stored["points"]}
    (replaced,) = Store(db).runs()
    assert replaced["id"] == stored["id"] == summary["run_id"] and replaced["points"] == stored["points"]
    assert replaced["status"] == "done"
    words = _design(tmp_path, "--store", str(db), "--fresh")
    assert words.exit_code == 0 and "recomputed: --fresh" in words.stdout
