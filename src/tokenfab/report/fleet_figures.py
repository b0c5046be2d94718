"""The fleet report's plots as Plotly figures, built from the rows the planner stores (`fleet.planner.rows`).

`figures(rows)` gives the $/Mtok lines (one per scenario) and, per scenario, the chips in service stacked by
hardware option; the keys become the ids of the report's sections (`plot-<key>` for the plot itself).
"""

from __future__ import annotations

import html
import math
import re
from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

LEGEND_BELOW = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": -0.18, "yanchor": "top"}


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _text(name: str) -> str:
    """A plan's name as Plotly text: shown as written (Plotly reads a subset of HTML in names and titles)."""
    return html.escape(name).replace("%{", "%&#123;")


def _scenarios(rows: list[dict[str, Any]]) -> list[str]:
    """Scenario names in the order the planner stored them (summary rows first, then any others)."""
    seen: dict[str, None] = {}
    for r in rows:
        if r["kind"] in ("summary", "month", "fleet"):
            seen.setdefault(r["scenario"], None)
    return list(seen)


def _months(rows: list[dict[str, Any]]) -> dict[str, list[tuple[str, float | None]]]:
    """Per scenario, its (month, $/Mtok) pairs in month order."""
    out: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for r in sorted((r for r in rows if r["kind"] == "month"), key=lambda r: r["key"]):
        out[r["scenario"]].append((r["month"], _finite(r["usd_per_mtok"])))
    return out


def month_axis(months: list[str]) -> dict[str, Any]:
    """A date x axis with a tick every 1, 2, 3, 6, 12, ... months: at most about a dozen, never mid-month."""
    step = next((k for k in (1, 2, 3, 6, 12) if len(months) <= 12 * k), 12 * math.ceil(len(months) / 144))
    return {"title": "month", "type": "date", "tickformat": "%b %Y", "hoverformat": "%b %Y", "dtick": f"M{step}",
            **({"tick0": months[0]} if months else {})}


def _decimals(vmax: float) -> int:
    """Decimals that show about three significant digits on an axis running up to vmax."""
    return max(0, 2 - math.floor(math.log10(vmax))) if vmax > 0 else 2


def slug(name: str, taken: set[str]) -> str:
    """An HTML id fragment for a scenario name ('supply:0.5' -> 'supply-0-5'), unique among `taken`."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "scenario"
    out, n = base, 2
    while out in taken:
        out, n = f"{base}-{n}", n + 1
    taken.add(out)
    return out


def usd_per_mtok(rows: list[dict[str, Any]]) -> go.Figure:
    """$ per million tokens by month, one line per scenario."""
    by = _months(rows)
    fig = go.Figure()
    for scen in _scenarios(rows):
        pts = by.get(scen)
        if not pts:
            continue
        name = _text(scen)
        fig.add_trace(go.Scatter(x=[m for m, _ in pts], y=[v for _, v in pts], mode="lines+markers", name=name,
                                 marker={"size": 4},
                                 hovertemplate=f"{name}<br>%{{x|%b %Y}}: $%{{y:,.4~f}}/Mtok<extra></extra>"))
    vmax = max((v for pts in by.values() for _, v in pts if v is not None), default=0.0)
    months = sorted({m for pts in by.values() for m, _ in pts})
    fig.update_layout(title="$ per million tokens over time, by scenario", xaxis=month_axis(months),
                      yaxis={"title": "$ / Mtok", "tickprefix": "$", "tickformat": f",.{_decimals(vmax)}~f",
                             "rangemode": "tozero"},
                      legend=LEGEND_BELOW, height=440, margin={"t": 50, "b": 100})
    return fig


def chips_in_service(rows: list[dict[str, Any]], scenario: str, colours: dict[str, str] | None = None) -> go.Figure:
    """Chips in service by month for one scenario, stacked by hardware option."""
    months = [m for m, _ in _months(rows).get(scenario, [])]
    by_opt: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["kind"] == "fleet" and r["scenario"] == scenario:
            by_opt[r["option"]][r["month"]] = r["chips"]
    months = months or sorted({m for vals in by_opt.values() for m in vals})
    colours = colours or {}
    fig = go.Figure()
    totals = [0.0] * len(months)
    for opt, vals in by_opt.items():
        ys = [vals.get(m, 0.0) for m in months]
        totals = [a + b for a, b in zip(totals, ys, strict=True)]
        line = {"width": 0.5, **({"color": colours[opt]} if opt in colours else {})}
        name = _text(opt)
        fig.add_trace(go.Scatter(x=months, y=ys, mode="lines", name=name, stackgroup="chips", line=line,
                                 hovertemplate=f"{name}<br>%{{x|%b %Y}}: %{{y:,.1f}} chips<extra></extra>"))
    top = max(totals, default=0.0)
    fig.update_layout(title=f"Chips in service by hardware: {_text(scenario)}", xaxis=month_axis(months),
                      yaxis={"title": "chips in service", "tickformat": ",.0f" if top >= 10 else ",.2~f",
                             "rangemode": "tozero"},
                      legend=LEGEND_BELOW, height=400, margin={"t": 50, "b": 100})
    return fig


def figures(rows: list[dict[str, Any]]) -> dict[str, tuple[str, go.Figure]]:
    """Section id -> (heading, figure): the $/Mtok lines, then one chips-in-service figure per planned scenario."""
    out: dict[str, tuple[str, go.Figure]] = {}
    if any(r["kind"] == "month" for r in rows):
        out["usd-per-mtok"] = ("$ per million tokens over time", usd_per_mtok(rows))
    planned = {r["scenario"] for r in rows if r["kind"] == "fleet"}
    options = list(dict.fromkeys(r["option"] for r in rows if r["kind"] == "fleet"))
    palette = qualitative.Plotly + qualitative.D3
    colours = {opt: palette[k % len(palette)] for k, opt in enumerate(options)}   # one colour per option, everywhere
    taken = set(out)
    for scen in _scenarios(rows):
        if scen in planned:
            out[f"chips-{slug(scen, taken)}"] = (scen, chips_in_service(rows, scen, colours))
    return out


__all__ = ["chips_in_service", "figures", "month_axis", "slug", "usd_per_mtok"]
