"""The report: self-contained HTML whose plots render in headless Chromium without a script error; PNGs."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tokenfab.report import write_html, write_pngs
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


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed (make test installs it)")
def test_plots_render_in_headless_chromium(summary, tmp_path):
    # any script error rewrites the title, which the dumped DOM then shows
    trap = "<script>window.addEventListener('error', e => { document.title = 'SCRIPT-ERROR: ' + e.message; });</script>"
    html = render(summary).replace("<head>", "<head>" + trap, 1)
    page = tmp_path / "report.html"
    page.write_text(html)
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    title = re.search(r"<title>(.*?)</title>", dom)
    assert title and "SCRIPT-ERROR" not in title.group(1), title
    for name in PLOTS:
        block = dom.split(f'id="plot-{name}"', 1)
        assert len(block) == 2, name
        assert 'class="main-svg"' in block[1].split("</section>", 1)[0], f"{name} did not render"
    assert dom.count("scatterlayer") >= 2 and dom.count("barlayer") >= 2
