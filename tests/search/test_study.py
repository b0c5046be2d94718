"""Build or buy: the answer's fields, monotone in every cost of the custom chip, time, and one-line bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.constants import Draws
from tokenfab.search import study
from tokenfab.search.problem import DesignInputError, DesignProblem
from tokenfab.search.run import SearchOptions, design
from tokenfab.store import Store
from tokenfab.units import month_label

OPTS = SearchOptions(exhaustive=True, top_k=3, sim_requests=300, samples=100)
TIMED = {"custom": {"partner": "broadcom-style", "partner_name": "Broadcom", "generation": 1, "tapeout": "2026-01"},
         "demand_range_output_tokens_per_day": [1.0e10, 6.0e10]}


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_spec):
    tmp = tmp_path_factory.mktemp("study")
    path = tmp / "p.yaml"
    path.write_text(yaml.safe_dump({**small_spec, **TIMED}))
    prob = DesignProblem.load(path)
    return prob, design(prob, Store(tmp / "r.duckdb"), OPTS, jobs=1)


def _ordered(b):
    return len(b) == 3 and b[0] <= b[1] <= b[2]


def test_the_answer_carries_every_field_with_bands(run):
    prob, s = run
    st = s["study"]
    assert st["first_delivery"] == "2027-01" and st["years_of_price_decline"] == pytest.approx(9 / 12)
    assert st["partner"] == "broadcom-style" and st["generation"] == 1
    assert {"custom", "gpu", "tpu", "trainium"} <= set(st["options"])
    for key, o in st["options"].items():
        assert _ordered(o["usd_per_mtok"]) and o["tokens_per_watt"] > 0 and o["chips"] > 0, key
        if key != "custom":
            assert _ordered(o["custom_cost_ratio"]) and 0 <= o["custom_cheaper_share"] <= 1
    custom = st["options"]["custom"]
    assert custom["unit_price_usd"][1] > custom["unit_cost_usd"] > 0 and 0 < custom["software_maturity"] < 1
    assert _ordered(st["payback"]["demand_tokens_per_day"]) and _ordered(st["custom_cost_ratio"])
    assert _ordered(st["bargaining"]["gpu_price_ratio"]) and st["bargaining"]["gpu"]["against"]
    assert st["bargaining"]["meaning"]
    assert [c["class"] for c in st["latency"]] == [c.name for c in prob.classes]
    for entry in st["latency"]:
        assert entry["custom"]["tpot_ms"] <= entry["slo"]["tpot_ms"] + 1e-6
    names = [sc["name"] for sc in st["scenarios"]]
    assert names[0] == "base" and any("supply shock" in n for n in names) and any("slip" in n for n in names)
    slip = next(sc for sc in st["scenarios"] if "slip" in sc["name"])
    assert slip["first_delivery"] == month_label(prob.delivery_month() + 6)
    assert len(st["tornado"]) == 5 and all(t["source"] for t in st["tornado"])
    swings = [abs(t["high"] - t["low"]) for t in st["tornado"]]
    assert swings == sorted(swings, reverse=True)
    # what the CLI prints as JSON
    text = json.dumps(s, default=str)
    assert '"bargaining"' in text and '"payback"' in text and '"tornado"' in text


def test_the_bought_options_are_those_of_the_delivery_date(run):
    prob, s = run
    later = [r["label"] for r in s["catalog"] if r.get("availability")]
    assert set(later) <= {r["label"] for r in s["catalog"]}
    for fam, label in s["study"]["met"]["best"].items():
        row = next(r for r in s["catalog"] if r["label"] == label)
        assert row["family"] == fam and row["available"] and row["buyable"]
    assert not any(r["label"] in ("mtia-v2", "maia-100") for r in [s["gpu"]])   # in-house chips are not for sale


def _custom(s):
    return {**s["custom"], "classes": s["custom"]["classes"]}


@pytest.mark.parametrize("name, dearer_side", [
    ("partner_gross_margin", "high"), ("software_nre_usd", "high"), ("software_run_usd_per_year", "high"),
    ("design_nre_usd", "high"), ("software_maturity_first_gen", "low"), ("partner_nre_share", "low"),
])
def test_more_margin_software_cost_or_less_maturity_never_make_the_chip_cheaper(run, name, dearer_side):
    prob, s = run
    row = _custom(s)
    lo = study.costs(prob, row, study.Pinned(name, "low")).usd[0]
    base = study.costs(prob, row, Draws()).usd[0]
    hi = study.costs(prob, row, study.Pinned(name, "high")).usd[0]
    dear, cheap = (hi, lo) if dearer_side == "high" else (lo, hi)
    assert dear > base > cheap


def test_a_later_delivery_never_makes_the_chip_cheaper_or_the_alternatives_dearer(run):
    prob, s = run
    row = _custom(s)
    gpu = next(r for r in s["catalog"] if r["key"] == s["gpu"]["key"])
    d = Draws()
    custom = [float(study.costs(prob, row, d, terms=replace(prob.terms, slip_months=m)).usd[0]) for m in (0, 3, 6, 12)]
    assert custom == sorted(custom) and custom[0] < custom[-1]
    start = prob.delivery_month()
    bought = [float(study.costs(prob, gpu, d, years=study.years_at(prob, gpu, start + m)).usd[0])
              for m in (0, 6, 12, 24)]
    assert bought == sorted(bought, reverse=True) and bought[-1] < bought[0]


def test_the_monte_carlo_is_seeded_and_the_demand_drawn(run):
    prob, s = run
    row = _custom(s)
    a = study.costs(prob, row, Draws(n=200, seed=4), demand_scale=study.demand_scale(prob, Draws(n=200, seed=4)))
    b = study.costs(prob, row, Draws(n=200, seed=4), demand_scale=study.demand_scale(prob, Draws(n=200, seed=4)))
    assert np.array_equal(a.usd, b.usd) and a.usd.std() > 0
    scale = np.asarray(study.demand_scale(prob, Draws(n=2000, seed=1)))
    lo, hi = prob.demand_range
    assert scale.min() >= lo / prob.demand and scale.max() <= hi / prob.demand


def test_the_jalapeno_study_loads_and_delivers_in_december_2026():
    prob = DesignProblem.load("examples/jalapeno/problem.yaml")
    assert month_label(prob.delivery_month()) == "2026-12" and prob.custom_spec.partner == "broadcom-style"
    lo, hi = prob.demand_range
    assert lo < prob.demand < hi and {c.model for c in prob.classes} == {"deepseek-r1", "llama-3.1-70b"}
    assert prob.raw["demand_source"] and prob.raw["question"]


@pytest.mark.parametrize("change, field", [
    ({"custom": {"partner": "nvidia"}}, "custom.partner"),
    ({"custom": {"generation": 0}}, "custom.generation"),
    ({"custom": {"tapeout": "2026/01"}}, "custom.tapeout"),
    ({"custom": {"first_delivry": "2026-12"}}, "custom.first_delivry: unknown field"),
    ({"custom": "broadcom"}, "custom:"),
    ({"scenarios": {"tapeout_slip_months": -2}}, "scenarios.tapeout_slip_months"),
    ({"demand_range_output_tokens_per_day": [5e10, 1e11]}, "demand_range_output_tokens_per_day"),
])
def test_bad_study_fields_give_one_line_and_exit_2(tmp_path, small_raw, change, field):
    raw = {**small_raw, **change}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DesignInputError) as e:
        DesignProblem.load(path)
    assert field in str(e.value) and "\n" not in str(e.value)
    db = tmp_path / "r.duckdb"
    res = CliRunner().invoke(app, ["design", "--problem", str(path), "--store", str(db), "--jobs", "1",
                                   "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and field in lines[0], res.output
    assert not db.exists() and not (tmp_path / "r.html").exists()
