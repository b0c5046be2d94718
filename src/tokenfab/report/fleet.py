"""The fleet plan's report section: one self-contained HTML file (Plotly, plotly.js inlined once, no downloads).

Built from the rows the planner stores (`fleet.planner.rows`), so a stored run can be re-rendered without
solving again: $/Mtok over time per scenario, stacked chips in service by hardware over time per scenario
(figures in `report.fleet_figures`), the scenario comparison table, the SLO capacities behind the plan and the
bargaining-power figure.
"""

from __future__ import annotations

import html
from typing import Any

from tokenfab.report.fleet_figures import figures


def _esc(x: Any) -> str:
    return html.escape(str(x))


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


def _plots(figs: dict[str, tuple[str, Any]], keys: list[str], first: bool, heading: str) -> list[str]:
    """Each figure in its own <section id=KEY>, plot div `plot-KEY`; plotly.js inlined with the page's first."""
    import plotly.io as pio

    out = []
    for i, key in enumerate(keys):
        title, fig = figs[key]
        inner = pio.to_html(fig, full_html=False, include_plotlyjs=first and i == 0, div_id=f"plot-{key}",
                            config={"displaylogo": False, "responsive": True})
        out.append(f'<section id="{key}"><{heading}>{_esc(title)}</{heading}>{inner}</section>')
    return out


def fleet_html(title: str, rows: list[dict[str, Any]], description: str = "") -> str:
    """The report section as a complete HTML page: one file, plotly.js inlined once, nothing fetched."""
    summaries = [r for r in rows if r["kind"] == "summary"]
    figs = figures(rows)
    mtok = [k for k in figs if k == "usd-per-mtok"]
    chips = [k for k in figs if k.startswith("chips-")]
    parts = [f"<h1>tokenfab fleet</h1><h2>{_esc(title)}</h2>"]
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
    parts += _plots(figs, mtok, True, "h3")
    if chips:
        parts.append("<h3>Chips in service by hardware</h3>")
        parts += _plots(figs, chips, not mtok, "h4")
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


__all__ = ["fleet_html"]
