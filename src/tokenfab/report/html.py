"""`report.html`: one self-contained file (Plotly inlined), written through a temp file and a rename."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

from tokenfab.report.figures import figures


def _money(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"${x:,.{digits}f}"


def _table(rows: list[list[str]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _side_by_side(s: dict[str, Any]) -> str:
    rows = []
    opts = [("custom", s["custom"], s.get("custom_band"))] + [("catalog", r, s.get("gpu_band") if s.get("gpu") and
                                                              r["key"] == s["gpu"]["key"] else None)
                                                             for r in s["catalog"]]
    for kind, r, band in opts:
        usd = r.get("usd_per_mtok")
        cell = _money(usd) if usd is not None else html.escape(r.get("reason") or "-")
        if band:
            cell += f" ({_money(band[0])}-{_money(band[2])})"
        deps = "; ".join(f"{p['class']}: tp{p['tp']} pp{p['pp']} {p['weight_precision']} b{p['max_batch']} "
                         f"c{p['chunk_tokens']}{' P/D' if p['disaggregated'] else ''}" for p in r.get("classes") or [])
        rows.append([kind, html.escape(r["label"]), cell,
                     "-" if r.get("user_tps") is None else f"{r['user_tps']:.0f}",
                     "-" if r.get("tokens_per_j") is None else f"{r['tokens_per_j']:.2f}",
                     "-" if not r.get("chips") else f"{r['chips']:,.0f}", html.escape(deps)])
    return _table(rows, ["kind", "chip", "$/Mtok (P10-P90)", "tok/s/user", "tok/J", "chips",
                         "deployment per class"])


def _assumptions(s: dict[str, Any]) -> str:
    rows = []
    for a in s["assumptions"]:
        rng = "" if a.get("low") is None else f"{a['low']:g} - {a['high']:g}"
        val = "" if a.get("value") is None else f"{a['value']:g}"
        src = a.get("source") or "-"
        link = f'<a href="{html.escape(src)}">{html.escape(src)}</a>' if src.startswith("http") else html.escape(src)
        rows.append([html.escape(a["name"]), val, rng, link])
    return _table(rows, ["constant", "value", "range", "source"])


def render(s: dict[str, Any]) -> str:
    import plotly.io as pio

    figs = figures(s)
    parts = []
    for i, (name, fig) in enumerate(figs.items()):
        parts.append(f'<section id="{name}">' + pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0),
                                                            div_id=f"plot-{name}") + "</section>")
    c, g = s["custom"], s.get("gpu")
    be = s.get("breakeven") or {}
    tiers = s["tiers"]
    rho = "-" if tiers.get("spearman") is None else f"{tiers['spearman']:.3f}"
    head = (f"<p>Recommended custom chip: <b>{html.escape(c['label'])}</b>, {_money(c['usd_per_mtok'])}/Mtok "
            f"(P10-P90 {_money(s['custom_band'][0])}-{_money(s['custom_band'][2])}).</p>")
    if g:
        head += (f"<p>Best catalog option: <b>{html.escape(g['label'])}</b>, {_money(g['usd_per_mtok'])}/Mtok "
                 f"(P10-P90 {_money(s['gpu_band'][0])}-{_money(s['gpu_band'][2])}). Break-even demand "
                 f"{be['demand_tokens_per_day'][1]:.3g} output tokens/day (P10-P90 "
                 f"{be['demand_tokens_per_day'][0]:.3g}-{be['demand_tokens_per_day'][2]:.3g}).</p>")
    head += (f"<p>Screen: {s['search']['points_screened']:,} deployment points over "
             f"{s['search']['custom_evaluated']} of {s['search']['custom_space']:,} custom chips plus the catalog; "
             f"simulator on the best {tiers['k']}: Spearman rank agreement {rho}.</p>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>tokenfab design report</title>"
            f"<style>{style}</style></head><body><h1>tokenfab design</h1>{head}{''.join(parts)}"
            f"<h2>Side by side</h2>{_side_by_side(s)}<h2>Assumptions and sources</h2>{_assumptions(s)}"
            "</body></html>")


def write_html(summary: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    text = render(summary)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
