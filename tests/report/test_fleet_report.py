"""The fleet report: one self-contained HTML page whose Plotly charts render in headless Chromium."""

from __future__ import annotations

import pytest
from plotly.offline import get_plotlyjs

from tokenfab.fleet.plan import parse_plan
from tokenfab.fleet.planner import plan_fleet, rows
from tokenfab.report.fleet import fleet_html
from tokenfab.report.fleet_figures import figures, month_axis, slug

# a one-year, one-GPU plan that solves in about a second
TINY = {
    "name": "tiny", "model": "llama-3.1-8b", "start": "2026-01", "months": 12, "requests_per_probe": 200,
    "demand": [{"name": "chat", "preset": "chat", "tokens_per_day": 2e10, "growth_per_month": 0.1, "low": 0.5,
                "high": 2.0}],
    "hardware": {"buy": [{"id": "h100-sxm", "lead_time_months": 1, "supply_per_month": 400}],
                 "rent": [{"id": "h100-sxm", "available": 300}]},
    "datacenter": {"capacity_mw": 2.0},
    "scenarios": [{"name": "cheap", "gpu_price": -0.3, "rent_price": -0.3}, {"name": "busy", "demand": "high"}],
}
PLOTS = ("usd-per-mtok", "chips-base", "chips-cheap", "chips-busy")


@pytest.fixture(scope="module")
def plan_rows(tmp_path_factory):
    return rows(plan_fleet(parse_plan(TINY), cache_dir=tmp_path_factory.mktemp("cache"), bargaining=False))


def synthetic() -> list[dict]:
    """Rows as the planner stores them: a feasible scenario with odd characters, one with a gap, one infeasible."""
    months = ["2027-01", "2027-02", "2027-03"]
    out: list[dict] = [{"key": "capacity/x/chat", "kind": "capacity", "hardware": "x", "class": "chat", "tp": 1,
                        "precision": "fp8", "output_tokens_per_s_per_chip": 1e3, "ttft_p_s": 0.2, "tpot_p_s": None,
                        "power_w_per_chip": 700.0}]
    for scen in ("<b>base</b>", "supply:0.5", "stuck"):
        out.append({"key": f"summary/{scen}", "kind": "summary", "scenario": scen, "shocks": "-",
                    "infeasible": "no capacity" if scen == "stuck" else "", "total_cost_usd": 2.5e9,
                    "capex_usd": 1.5e9, "opex_usd": 1e9, "usd_per_mtok_mean": 0.5, "usd_per_mtok_first": 0.6,
                    "usd_per_mtok_last": 0.4, "custom_share_tokens": 0.25, "custom_built": "", "binding": ""})
        if scen == "stuck":
            continue
        for t, m in enumerate(months):
            out.append({"key": f"month/{scen}/{t:03d}", "kind": "month", "scenario": scen, "month": m,
                        "usd_per_mtok": None if (scen, t) == ("supply:0.5", 1) else 0.6 - 0.1 * t})
            for opt, chips in (("gpu (rent)", 1e3 * (3 - t)), ("asic", 2.5e5 * t)):
                if chips:
                    out.append({"key": f"fleet/{scen}/{t:03d}/{opt}", "kind": "fleet", "scenario": scen, "month": m,
                                "option": opt, "chips": chips})
    out.append({"key": "bargaining", "kind": "bargaining", "worth_building_now": True, "saving_usd": 3e8,
                "breakeven_multiplier": 0.7, "price_cut": 0.3})
    return out


def test_one_file_plotly_inlined_once() -> None:
    page = fleet_html("fleet plan synthetic", synthetic(), "a <description>")
    assert "<script src=" not in page and page.count(get_plotlyjs()[:500]) == 1
    assert "<h1>tokenfab fleet</h1><h2>fleet plan synthetic</h2>" in page and "a &lt;description&gt;" in page
    for name in ("usd-per-mtok", "chips-b-base-b", "chips-supply-0-5"):
        assert f'<section id="{name}">' in page and f'id="plot-{name}"' in page, name
    assert "chips-stuck" not in page                        # infeasible: a table row, no chart
    for text in ("Scenarios compared", "Bargaining power", "SLO capacity per chip", "$2.50 B", "infeasible"):
        assert text in page, text
    assert "<b>base</b>" not in page                         # names are escaped, in tables and in Plotly text


def test_axes_and_series() -> None:
    figs = figures(synthetic())
    assert list(figs) == ["usd-per-mtok", "chips-b-base-b", "chips-supply-0-5"]
    _, mtok = figs["usd-per-mtok"]
    assert [t.name for t in mtok.data] == ["&lt;b&gt;base&lt;/b&gt;", "supply:0.5"]
    assert mtok.data[1].y[1] is None                          # a month without $/Mtok is a gap
    assert mtok.layout.yaxis.title.text == "$ / Mtok" and mtok.layout.yaxis.tickformat == ",.3~f"
    _, chips = figs["chips-supply-0-5"]
    assert {t.stackgroup for t in chips.data} == {"chips"} and [t.name for t in chips.data] == ["gpu (rent)", "asic"]
    assert list(chips.data[0].y) == [3e3, 2e3, 1e3] and list(chips.data[1].y) == [0.0, 2.5e5, 5e5]
    assert chips.layout.yaxis.title.text == "chips in service" and chips.layout.yaxis.tickformat == ",.0f"
    assert chips.layout.legend.orientation == "h" and chips.layout.legend.y < 0     # below the plot, not over it
    colour = {t.name: t.line.color for f in ("chips-b-base-b", "chips-supply-0-5") for t in figs[f][1].data}
    assert len(set(colour.values())) == 2                     # one colour per hardware option across scenarios
    assert mtok.layout.xaxis.dtick == "M1" and chips.layout.xaxis.tick0 == "2027-01"   # one tick a month, no repeats
    assert month_axis([f"{2026 + t // 12}-{t % 12 + 1:02d}" for t in range(48)])["dtick"] == "M6"
    assert slug("a", {"a"}) == "a-2" and slug("!!", set()) == "scenario"


def test_fleet_plots_render_in_headless_chromium(plan_rows, rendered) -> None:
    dom = rendered(fleet_html("fleet plan tiny", plan_rows), PLOTS)
    assert dom.count("scatterlayer") >= len(PLOTS)
