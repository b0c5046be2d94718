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


def _b(v: list[float], fmt: str = "${:,.3f}") -> str:
    return f"{fmt.format(v[1])} ({fmt.format(v[0])}-{fmt.format(v[2])})"


def _study(st: dict[str, Any]) -> str:
    """Build or buy: options of the delivery date, verdict, payback, bargaining, latency, scenarios, tornado."""
    if not st or "error" in st:
        return "" if not st else f"<p>{html.escape(st['error'])}</p>"
    e = html.escape
    parts = []
    if st.get("question"):
        parts.append(f"<p><i>{e(st['question'])}</i></p>")
    parts.append(f"<p>First delivery <b>{e(st['first_delivery'])}</b>"
                 + (f" (tape-out {e(st['tapeout'])})" if st.get("tapeout") else "")
                 + f"; {e(st.get('partner_name') or st['partner'])} partner, generation {st['generation']}; catalog "
                 f"prices declined from {e(st['catalog_price_date'])} over {st['years_of_price_decline']:.2f} years. "
                 f"<b>Verdict</b>: {e(st['verdict'])}.</p>")
    rows = []
    for key, o in st["options"].items():
        rows.append([e(key), e(o["label"]) + (f" ({e(o['availability'])})" if o.get("availability") else ""),
                     _b(o["usd_per_mtok"]), "-" if key == "custom" else _b(o["custom_cost_ratio"], "{:.2f}"),
                     f"{o['tokens_per_watt']:.2f}", f"{o['chips']:,.0f}", _b(o["unit_price_usd"], "${:,.0f}"),
                     "-" if key == "custom" else _b(o["payback_demand_tokens_per_day"], "{:.3g}")])
    parts.append(_table(rows, ["option", "chip", "$/Mtok P50 (P10-P90)", "custom / it", "tokens/s per W", "chips",
                               "unit price", "payback demand (tokens/day)"]))
    pb, bg = st["payback"], st["bargaining"]
    parts.append(f"<p>Payback against {e(pb['against'])}: from {_b(pb['demand_tokens_per_day'], '{:.3g}')} output "
                 f"tokens/day; NRE repaid in {_b(pb['years_at_demand'], '{:.1f}')} years at the study's demand.</p>")
    if bg.get("meaning"):
        parts.append(f"<p>Bargaining: {e(bg['meaning'])} (GPU price ratio {_b(bg['gpu_price_ratio'], '{:.2f}')}).</p>")
    keys = list(st["options"])
    lat = [[e(r["class"]) + f" (TPOT {r['slo']['tpot_ms']:.0f} ms, TTFT {r['slo']['ttft_ms']:,.0f} ms, "
            f"p{r['slo']['percentile']:g})"] + ["-" if r.get(k) is None else
                                                f"{r[k]['tpot_ms']:.0f} / {r[k]['ttft_ms']:,.0f}" for k in keys]
           for r in st["latency"]]
    parts.append("<h3>Latency of the chosen deployments (TPOT / TTFT tail, ms)</h3>" + _table(lat, ["class", *keys]))
    sc = [[e(x["name"]), e(x["first_delivery"]), _b(x["custom_usd_per_mtok"]), e(x["best_bought"]),
           _b(x["best_bought_usd_per_mtok"]), _b(x["custom_cost_ratio"], "{:.2f}"), f"{x['custom_cheaper_share']:.0%}"]
          for x in st["scenarios"]]
    parts.append("<h3>Scenarios</h3>" + _table(sc, ["scenario", "first delivery", "custom $/Mtok", "best bought",
                                                     "its $/Mtok", "custom / it", "custom cheaper in"]))
    tor = [[e(t["input"]), f"{t['range'][0]:.3g} - {t['range'][1]:.3g}", f"{t['low']:.3f}", f"{t['high']:.3f}",
            e(str(t.get("source") or "-"))] for t in st["tornado"]]
    if st["tornado"]:
        parts.append("<h3>The five inputs that swing it most (custom / best-bought $/Mtok, base "
                     f"{st['tornado'][0]['base']:.3f})</h3>"
                     + _table(tor, ["input", "range", "at low", "at high", "source"]))
    return "<h2>Build or buy</h2>" + "".join(parts)


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
            f"<style>{style}</style></head><body><h1>tokenfab design</h1>{head}{_study(s.get('study') or {})}"
            f"{''.join(parts)}"
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
