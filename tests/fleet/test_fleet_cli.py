"""`tokenfab fleet`: a small plan end to end (store, report), and bad input -> one line, exit 2, nothing written."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from plotly.offline import get_plotlyjs
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.fleet.plan import FleetError, load_plan, parse_plan
from tokenfab.fleet.planner import plan_fleet
from tokenfab.store import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleet"
runner = CliRunner()


def tiny(**changes: object) -> dict:
    plan = {
        "name": "tiny", "model": "llama-3.1-8b", "start": "2026-01", "months": 12, "requests_per_probe": 200,
        "demand": [
            {"name": "chat", "preset": "chat", "tokens_per_day": 2e10, "growth_per_month": 0.1, "low": 0.5,
             "high": 2.0},
            {"name": "batch", "class": {"input_len": 1000, "output_len": 200},
             "slo": {"ttft_s": 5.0, "tpot_s": 0.1, "percentile": 90}, "tokens_per_day": 1e9},
        ],
        "hardware": {"buy": [{"id": "h100-sxm", "lead_time_months": 1, "supply_per_month": 400}],
                     "rent": [{"id": "h100-sxm", "available": 300}]},
        "datacenter": {"capacity_mw": 2.0},
        "scenarios": [{"name": "cheap", "gpu_price": -0.3, "rent_price": -0.3}, {"name": "busy", "demand": "high"}],
    }
    plan.update(changes)
    return plan


def write(tmp: Path, plan: dict) -> Path:
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def test_tiny_plan_end_to_end(tmp_path: Path) -> None:
    plan = write(tmp_path, tiny())
    db, html = tmp_path / "r.duckdb", tmp_path / "r.html"
    res = runner.invoke(app, ["fleet", str(plan), "--store", str(db), "--report", str(html), "--cache",
                              str(tmp_path / "cache"), "--scenarios", "cheap,busy,supply:0.5"])
    assert res.exit_code == 0, res.output
    assert "base" in res.output and "cheap" in res.output and "supply:0.5" in res.output
    store = Store(db)
    (run,) = store.runs()
    pts = store.points(run["id"]).to_pylist()
    kinds = {p["kind"] for p in pts}
    assert {"capacity", "summary", "month", "fleet"} <= kinds
    summaries = {p["scenario"]: p for p in pts if p["kind"] == "summary"}
    assert summaries["cheap"]["total_cost_usd"] < summaries["base"]["total_cost_usd"]
    assert summaries["busy"]["total_cost_usd"] > summaries["base"]["total_cost_usd"]
    months = [p for p in pts if p["kind"] == "month" and p["scenario"] == "base"]
    # power by month: the owned fleet's provisioned MW, never above the datacenter's capacity
    assert all(0.0 <= m["provisioned_mw"] <= m["capacity_mw"] * (1 + 1e-9) for m in months)
    assert max(m["provisioned_mw"] for m in months) == pytest.approx(summaries["base"]["peak_mw"])
    assert "MW provisioned" in res.output
    page = html.read_text()
    HTMLParser().feed(page)
    assert "$ per million tokens" in page and "<script src=" not in page
    assert page.count(get_plotlyjs()[:500]) == 1               # plotly.js inlined once, not per figure
    for name in ("usd-per-mtok", "chips-base", "chips-cheap", "chips-busy", "chips-supply-0-5"):
        assert f'<section id="{name}">' in page and f'id="plot-{name}"' in page, name


def test_same_plan_same_plan(tmp_path: Path) -> None:
    plan = parse_plan(tiny(scenarios=[]))
    a = plan_fleet(plan, cache_dir=tmp_path).base.solution
    b = plan_fleet(plan, cache_dir=tmp_path).base.solution
    assert a is not None and b is not None
    assert a.cost == b.cost and (a.delivered == b.delivered).all()


@pytest.mark.parametrize("change, message", [
    ({"hardware": {"custom": [{"design": "inference-hbm", "tape_out": "2026-06", "first_delivery": "2026-03",
                               "supply_per_month": 100}]}},
     "hardware.custom[0] (inference-hbm): dates out of order: first_delivery 2026-03 is before tape_out 2026-06"),
    ({"datacenter": {"capacity_mw": 0.004}}, "datacenter.capacity_mw: 0.004 MW is below one server"),
    ({"demand": [{"name": "instant", "preset": "chat", "slo": {"ttft_s": 0.0001, "percentile": 99},
                  "tokens_per_day": 1e9}]},
     "demand 'instant': no hardware option meets its SLO (p99 TTFT <= 0.1 ms)"),
    ({"start": "2026-13"}, "start = '2026-13': a month is written YYYY-MM"),
    ({"months": 0}, "months: Input should be greater than or equal to 1"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"hardware": {"rent": [{"id": "h100-sxm", "available": 10}]}},
     "infeasible: demand 'chat' in 2026-01 cannot be met within its SLO"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path: Path, change: dict, message: str) -> None:
    plan = write(tmp_path, tiny(**change, scenarios=[]))
    db, html = tmp_path / "r.duckdb", tmp_path / "r.html"
    res = runner.invoke(app, ["fleet", str(plan), "--store", str(db), "--report", str(html), "--cache",
                              str(tmp_path / "cache"), "--no-bargaining"])
    assert res.exit_code == 2, res.output
    line = res.stderr.strip() if hasattr(res, "stderr") and res.stderr else res.output.strip().splitlines()[-1]
    assert message in line and "\n" not in line.split("error: ")[-1]
    assert not db.exists() and not html.exists()
    assert not list(tmp_path.glob("*.part"))


def test_example_plans_validate() -> None:
    for name in ("gpu-only.yaml", "gpu-custom.yaml"):
        plan = load_plan(EXAMPLES / name)
        assert plan.months >= 36 and plan.scenarios
    custom = load_plan(EXAMPLES / "gpu-custom.yaml")
    assert custom.hardware.custom and not load_plan(EXAMPLES / "gpu-only.yaml").hardware.custom


def test_unknown_scenario_is_named() -> None:
    with pytest.raises(FleetError, match="--scenarios 'nope'"):
        plan_fleet(parse_plan(tiny()), ["nope"])


def test_custom_chip_bought_dearer_is_never_cheaper_to_plan(tmp_path: Path) -> None:
    """A custom chip with a software team to pay, or bought through a partner, never lowers the plan's cost."""
    def cost(**custom: object) -> tuple[float, float]:
        spec = {"design": "inference-hbm", "design_start": "2026-01", "tape_out": "2026-02",
                "first_delivery": "2026-04", "ramp_months": 1, "supply_per_month": 400, **custom}
        plan = parse_plan(tiny(scenarios=[], months=24, hardware={
            "buy": [{"id": "h100-sxm", "lead_time_months": 1, "supply_per_month": 400}],
            "rent": [{"id": "h100-sxm", "available": 300}], "custom": [spec]}))
        sol = plan_fleet(plan, cache_dir=tmp_path).base.solution
        assert sol is not None
        custom_chips = sum(sol.delivered[i].sum() for i, o in enumerate(sol.instance.options) if o.kind == "custom")
        return sol.cost, float(custom_chips)

    free = cost(partner="in-house", software_usd_per_year=0.0, nre_usd=1.0)
    assert free[1] > 0                                   # at cost and with no software it is built
    team = cost(partner="in-house", software_usd_per_year=2e5, nre_usd=1.0)
    partner = cost(partner="broadcom-style", software_usd_per_year=0.0, nre_usd=1.0)
    assert team[0] > free[0] and partner[0] > free[0]
    assert team[1] <= free[1] and partner[1] <= free[1]
    never = cost(partner="in-house", software_usd_per_year=5e8, nre_usd=1.0)
    assert never[1] == 0                                 # a team dearer than the whole fleet: not built


def test_names_that_look_like_markup_print_as_written(tmp_path: Path) -> None:
    plan = tiny(scenarios=[])
    plan["demand"][0]["name"] = "[/oops]"
    path = write(tmp_path, plan)
    res = runner.invoke(app, ["fleet", str(path), "--store", str(tmp_path / "r.duckdb"), "--cache",
                              str(tmp_path / "cache"), "--no-bargaining"])
    assert res.exit_code == 0, res.output
    assert "[/oops]" in res.output


def test_a_negative_custom_cost_is_one_line(tmp_path: Path) -> None:
    spec = {"design": "inference-hbm", "tape_out": "2026-02", "first_delivery": "2026-04", "supply_per_month": 10,
            "software_usd_per_year": -1}
    plan = write(tmp_path, tiny(scenarios=[], hardware={"buy": [{"id": "h100-sxm"}], "custom": [spec]}))
    res = runner.invoke(app, ["fleet", str(plan), "--store", str(tmp_path / "r.duckdb"), "--no-bargaining"])
    assert res.exit_code == 2
    assert "software_usd_per_year" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.duckdb").exists()


def _two_plans(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "east.yaml", tmp_path / "west.yaml"
    a.write_text(yaml.safe_dump(tiny(name="east", months=6, scenarios=[])))
    b.write_text(yaml.safe_dump(tiny(name="west", months=6, scenarios=[{"name": "cheap", "gpu_price": -0.3}])))
    return a, b


def test_several_plans_in_one_call_are_one_run_and_one_report_each(tmp_path: Path) -> None:
    import json
    a, b = _two_plans(tmp_path)
    db = tmp_path / "r.duckdb"
    res = runner.invoke(app, ["fleet", str(a), str(b), "--store", str(db), "--cache", str(tmp_path / "cache"),
                              "--no-bargaining", "--json"])
    assert res.exit_code == 0, res.output
    answer = json.loads(res.stdout)
    assert list(answer) == ["plans"] and [p["plan"] for p in answer["plans"]] == ["east", "west"]
    assert [len(p["scenarios"]) for p in answer["plans"]] == [1, 2]
    assert [p["report"] for p in answer["plans"]] == [str(tmp_path / "east-report.html"),
                                                      str(tmp_path / "west-report.html")]
    assert all(Path(p["report"]).stat().st_size > 0 for p in answer["plans"])
    runs = {r["id"]: r for r in Store(db).runs()}
    assert sorted(runs) == sorted(p["run_id"] for p in answer["plans"])
    assert all(runs[p["run_id"]]["points"] == p["rows"] for p in answer["plans"])
    # the terminal: each plan's tables and its own stored-run line
    res = runner.invoke(app, ["fleet", str(a), str(b), "--store", str(db), "--cache", str(tmp_path / "cache"),
                              "--no-bargaining"])
    assert res.exit_code == 0, res.output
    assert "fleet plan east" in res.stdout and "fleet plan west" in res.stdout
    assert res.stdout.count("stored run ") == 2 and res.stdout.index("east-report") < res.stdout.index("west-report")


@pytest.mark.parametrize("second, needle", [
    (None, "cannot read: No such file or directory"),
    ("name: [unclosed", "not valid YAML"),
    ("name: x\nmodel: llama-3.1-8b\n", "start"),
    (yaml.safe_dump(tiny(months=6, scenarios=[], hardware={"rent": [{"id": "h100-sxm", "available": 10}]})),
     "infeasible: demand 'chat'"),   # read well, solved after the first plan: still nothing written
])
def test_one_bad_plan_of_several_writes_nothing(tmp_path: Path, second: str | None, needle: str) -> None:
    a, _ = _two_plans(tmp_path)
    bad = tmp_path / "bad.yaml"
    if second is not None:
        bad.write_text(second)
    db = tmp_path / "r.duckdb"
    res = runner.invoke(app, ["fleet", str(a), str(bad), "--store", str(db), "--cache", str(tmp_path / "cache"),
                              "--no-bargaining"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()   # before it, a solved plan's progress lines
    assert [ln for ln in lines if ln.startswith("error:")] == lines[-1:], res.stderr
    assert lines[-1].startswith(f"error: {bad}: ") and needle in lines[-1], res.stderr
    assert not db.exists() and not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("*.part"))


def test_several_plans_refuse_one_report_path_and_a_plan_given_twice(tmp_path: Path) -> None:
    a, b = _two_plans(tmp_path)
    db = tmp_path / "r.duckdb"
    for args, needle in ((["--report", str(tmp_path / "r.html"), str(a), str(b)], "--report"),
                         ([str(a), str(a)], "given twice")):
        res = runner.invoke(app, ["fleet", *args, "--store", str(db)])
        assert res.exit_code == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not db.exists() and not list(tmp_path.glob("*.html"))
