"""The fleet plan's report section: one self-contained HTML file (inline SVG, no scripts, no downloads).

Built from the rows the planner stores (`search.fleet.rows`), so a stored run can be re-rendered without
solving again: stacked chips in service by hardware over time per scenario, $/Mtok over time per scenario,
the scenario comparison table, the SLO capacities behind the plan and the bargaining-power figure.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
W, H, PAD_L, PAD_B, PAD_T, PAD_R = 640, 260, 64, 36, 16, 150


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    return next(m * e for m in (1, 2, 2.5, 5, 10) if m * e >= v)


def _axes(months: list[str], ymax: float, ylabel: str) -> list[str]:
    out = []
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    for i in range(5):
        y = PAD_T + ph - ph * i / 4
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{PAD_L + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{ymax * i / 4:,.3g}</text>')
    step = max(1, len(months) // 6)
    for i in range(0, len(months), step):
        x = PAD_L + pw * i / max(len(months) - 1, 1)
        out.append(f'<text x="{x:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="11">'
                   f'{_esc(months[i])}</text>')
    out.append(f'<text x="14" y="{PAD_T + ph / 2:.1f}" font-size="11" transform="rotate(-90 14 {PAD_T + ph / 2:.1f})" '
               f'text-anchor="middle">{_esc(ylabel)}</text>')
    return out


def _xy(i: int, v: float, n: int, ymax: float) -> tuple[float, float]:
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    return PAD_L + pw * i / max(n - 1, 1), PAD_T + ph - ph * v / ymax


def _legend(names: list[str]) -> list[str]:
    out = []
    for k, name in enumerate(names):
        y = PAD_T + 14 * k
        out.append(f'<rect x="{W - PAD_R + 10}" y="{y}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{W - PAD_R + 24}" y="{y + 9}" font-size="11">{_esc(name)}</text>')
    return out


def stacked(months: list[str], series: dict[str, list[float]], title: str, ylabel: str) -> str:
    """Stacked areas (one per series) over the months."""
    n = len(months)
    names = list(series)
    top = [0.0] * n
    layers = []
    for name in names:
        low = top[:]
        top = [a + b for a, b in zip(top, series[name], strict=True)]
        layers.append((name, low, top[:]))
    ymax = _nice(max(top, default=0.0) * 1.05)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">',
             f'<title>{_esc(title)}</title>', *_axes(months, ymax, ylabel)]
    for k, (_, low, high) in enumerate(layers):
        pts = [_xy(i, high[i], n, ymax) for i in range(n)] + [_xy(i, low[i], n, ymax) for i in reversed(range(n))]
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<polygon points="{d}" fill="{PALETTE[k % len(PALETTE)]}" fill-opacity="0.85"/>')
    parts += _legend(names)
    parts.append("</svg>")
    return "".join(parts)


def lines(months: list[str], series: dict[str, list[float | None]], title: str, ylabel: str) -> str:
    n = len(months)
    vals = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    ymax = _nice(max(vals, default=1.0) * 1.05)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">',
             f'<title>{_esc(title)}</title>', *_axes(months, ymax, ylabel)]
    for k, s in enumerate(series.values()):
        pts = [_xy(i, v, n, ymax) for i, v in enumerate(s) if v is not None and math.isfinite(v)]
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<polyline points="{d}" fill="none" stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="2"/>')
    parts += _legend(list(series))
    parts.append("</svg>")
    return "".join(parts)


def _table(head: list[str], body: list[list[Any]]) -> str:
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    tr = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>"


def _money(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x / 1e9:,.2f} B" if abs(x) >= 1e9 else f"${x / 1e6:,.1f} M"


def _summary_row(s: dict[str, Any]) -> list[Any]:
    if s.get("infeasible"):
        return [s["scenario"], s["shocks"], "infeasible", "", "", "", "", "", "", s["infeasible"]]
    return [s["scenario"], s["shocks"], _money(s["total_cost_usd"]), _money(s["capex_usd"]), _money(s["opex_usd"]),
            f"{s['usd_per_mtok_mean']:.3f}", f"{s['usd_per_mtok_first']:.3f} -> {s['usd_per_mtok_last']:.3f}",
            f"{s['custom_share_tokens']:.0%}", s["custom_built"] or "-", s["binding"] or "-"]


def fleet_html(title: str, rows: list[dict[str, Any]], description: str = "") -> str:
    """The report section as a complete HTML page."""
    summaries = [r for r in rows if r["kind"] == "summary"]
    months_by: dict[str, list[str]] = defaultdict(list)
    mtok: dict[str, list[float | None]] = defaultdict(list)
    for r in sorted((r for r in rows if r["kind"] == "month"), key=lambda r: r["key"]):
        months_by[r["scenario"]].append(r["month"])
        mtok[r["scenario"]].append(r["usd_per_mtok"])
    fleet: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in (r for r in rows if r["kind"] == "fleet"):
        fleet[r["scenario"]][r["option"]][r["month"]] = r["chips"]
    parts = [f"<h2>{_esc(title)}</h2>"]
    if description:
        parts.append(f"<p>{_esc(description)}</p>")
    parts.append("<h3>Scenarios compared</h3>")
    parts.append(_table(
        ["scenario", "shocks", "total cost (discounted)", "capex", "opex", "mean $/Mtok", "$/Mtok first -> last",
         "custom share of tokens", "custom built", "binding constraints"],
        [_summary_row(s) for s in summaries]))
    bp = next((r for r in rows if r["kind"] == "bargaining"), None)
    if bp is not None:
        if bp["worth_building_now"]:
            text = (f"The custom chip saves {_money(bp['saving_usd'])} at today's GPU prices; it stays worth building "
                    f"until GPU prices fall by {bp['price_cut']:.0%} (multiplier {bp['breakeven_multiplier']:.2f}).")
        else:
            text = "At today's GPU prices the optimal plan does not build the custom chip."
        parts.append(f"<h3>Bargaining power</h3><p>{_esc(text)}</p>")
    if mtok:
        first = next(iter(months_by.values()))
        parts.append("<h3>$ per million tokens over time</h3>")
        parts.append(lines(first, dict(mtok), "$/Mtok per scenario", "$ / Mtok"))
    parts.append("<h3>Chips in service by hardware</h3>")
    for scen, by_opt in fleet.items():
        months = months_by[scen]
        series = {opt: [vals.get(m, 0.0) for m in months] for opt, vals in by_opt.items()}
        parts.append(f"<h4>{_esc(scen)}</h4>")
        parts.append(stacked(months, series, f"chips in service, {scen}", "chips"))
    caps = [r for r in rows if r["kind"] == "capacity"]
    parts.append("<h3>SLO capacity per chip (serving simulator)</h3>")
    parts.append(_table(["hardware", "class", "tp", "precision", "out tok/s/chip", "p TTFT s", "p TPOT s", "W/chip"],
                        [[c["hardware"], c["class"], c["tp"] or "-", c["precision"] or "-",
                          f"{c['output_tokens_per_s_per_chip']:,.1f}",
                          f"{c['ttft_p_s']:.3f}" if c["ttft_p_s"] is not None else "-",
                          f"{c['tpot_p_s']:.3f}" if c["tpot_p_s"] is not None else "-",
                          f"{c['power_w_per_chip']:,.0f}"] for c in caps]))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:24px auto;color:#222}"
             "table{border-collapse:collapse;font-size:12px;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f4f4f4}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")


__all__ = ["fleet_html", "lines", "stacked"]
