"""The report: self-contained HTML whose plots render in headless Chromium without a script error; PNGs."""

from __future__ import annotations

import copy
import math
import re

import pytest
import yaml

import tokenfab
from tokenfab.report import write_html, write_pngs
from tokenfab.report.figures import figures
from tokenfab.report.html import render
from tokenfab.search.problem import DesignProblem
from tokenfab.search.run import SearchOptions, design
from tokenfab.store import Store

SMALL = {
    "traffic": {"mix": {"chat": 1.0}}, "models": ["llama-3.1-8b"], "assign": {},
    "demand_output_tokens_per_day": 2.0e10,
    "constraints": {"node": "n3", "power_w": 1500, "max_chiplets": 2},
    "space": {"cores": [64, 128], "clock_ghz": [1.8], "memory": ["HBM3E:4x36", "HBM3E:8x36"], "sram_shared_mb": [128],
              "scaleup_links": [16], "scaleup_domain": [32], "scaleout_gbps": [400]},
    "deployment": {"tp": [1, 2], "pp": [1], "weight_precision": ["fp8"], "kv_precision": ["fp8"],
                   "max_batch": [64, 256], "chunk_tokens": [2048], "disaggregated": [False]},
}
PLOTS = ("pareto", "breakdown", "roofline", "tornado")


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rep")
    path = tmp / "p.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return design(DesignProblem.load(path), Store(tmp / "r.duckdb"),
                  SearchOptions(exhaustive=True, top_k=3, sim_requests=300, samples=50), jobs=1)


def test_html_is_self_contained(summary, tmp_path):
    path = write_html(summary, tmp_path / "report.html")
    text = path.read_text()
    assert "<script src=" not in text           # plotly.js is inlined, nothing fetched
    for name in PLOTS:
        assert f'id="plot-{name}"' in text
    assert "Assumptions and sources" in text and "https://" in text and summary["custom"]["label"] in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]   # no temp file left behind


def test_pngs(summary, tmp_path):
    paths = write_pngs(summary, tmp_path / "png")
    assert sorted(p.name for p in paths) == sorted(f"{n}.png" for n in PLOTS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_plots_render_in_headless_chromium(summary, rendered):
    dom = rendered(render(summary), PLOTS)
    assert dom.count("scatterlayer") >= 2 and dom.count("barlayer") >= 2


def _text(html: str) -> str:
    """The page's visible words: scripts (plotly.js, figure JSON) and tags removed."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", html, flags=re.S))


def test_never_prints_inf_or_nan(summary):
    s = copy.deepcopy(summary)
    s["breakeven"]["demand_tokens_per_day"] = [float("nan"), None, math.inf]
    for st in (summary, s):
        text = _text(render(st))
        assert not re.search(r"\b(inf|infinity|nan)\b", text, flags=re.I), re.findall(r".{40}\binf\b.{40}", text)
    assert "never" in _text(render(s))   # the summary's inf break-even reads as words


def test_header_names_question_run_and_version(summary):
    head = _text(render(summary)).split("Recommended custom chip")[0]
    assert summary["run_id"] in head and tokenfab.__version__ in head
    assert "llama-3.1-8b" in head and "20 billion output tokens/day" in head
    assert re.search(r"\d{4}-\d\d-\d\d", head)


def test_pareto_legend_clear_of_colour_bar(summary):
    lay = figures(summary)["pareto"].layout
    below = lay.legend.orientation == "h" and lay.legend.y < 0
    assert below or lay.coloraxis.colorbar.x > (lay.legend.x or 1.02) + 0.1


def test_log_axes_label_full_values(summary):
    figs = figures(summary)
    logs = [(name, ax) for name, fig in figs.items() for ax in (fig.layout.xaxis, fig.layout.yaxis)
            if ax.type == "log"]
    assert {n for n, _ in logs} >= {"pareto", "roofline"}
    for name, ax in logs:
        # labels only where we put them (1, 2, 5 x 10^k), each formatted in full; plotly's digit-only "D" ticks off
        assert ax.tickvals and ax.tickformat and ax.dtick is None, name
        assert all(round(v / 10 ** math.floor(math.log10(v)), 6) in (1, 2, 5) for v in ax.tickvals), name
    roof = figs["roofline"].layout
    assert roof.yaxis.tickformat == "~s" and "FLOP/s" in roof.yaxis.title.text
    assert "FLOP/byte" in roof.xaxis.title.text
    assert figs["pareto"].layout.xaxis.tickformat.startswith("$")


def test_sensitivity_and_assumptions_read_as_words(summary):
    assert all("_" not in y for y in figures(summary)["tornado"].data[0].y)
    page = render(summary)
    table = page.split("five inputs that swing it most", 1)[1].split("</table>", 1)[0]
    inputs = re.findall(r"<tr><td>(.*?)</td>", table)
    assert len(inputs) == len(summary["study"]["tornado"]) and not any("_" in i for i in inputs)
    assumptions = page.split("Assumptions and sources", 1)[1]
    assert "<th>unit</th>" in assumptions and "<td>$/yr</td>" in assumptions


def test_text_legible_at_slide_size(summary):
    assert all(fig.layout.font.size >= 13 for fig in figures(summary).values())
    sizes = [int(px) for px in re.findall(r"font-size:(\d+)px", render(summary).split("</style>")[0])]
    assert sizes and min(sizes) >= 13
