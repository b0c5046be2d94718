"""`report.html`: one self-contained file (Plotly inlined), written through a temp file and a rename."""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from tokenfab.labels import describe
from tokenfab.report.figures import FONT_PX, figures


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _num(x: Any, fmt: str = "{:.3g}") -> str:
    """A number, or "-" where there is none (None, nan, inf): the report never prints "inf" or "nan"."""
    return fmt.format(x) if _finite(x) else "-"


def _money(x: float | None, digits: int = 3) -> str:
    return _num(x, f"${{:,.{digits}f}}")


def _count(x: float) -> str:
    """A large number in words (46.2 trillion) rather than 4.62e+13, for reading aloud off a slide."""
    for div, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(x) >= div:
            v = float(f"{x / div:.3g}")   # three significant figures, with thousands separators past 1,000
            return f"{v:,.0f} {word}" if v >= 100 else f"{v:.3g} {word}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _val(x: Any) -> str:
    return _count(x) if _finite(x) else "-"


def demand_words(d: list[float | None] | None, unit: str = "output tokens/day") -> str:
    """The demand (P10, P50, P90) from which the custom chip pays back its NRE and software, in words where no
    demand does (inf or None: its cost per token stays above the rival's however much it serves); the wording of
    the CLI's answer."""
    v = [x if _finite(x) else math.inf for x in (d or [None] * 3)]
    if not math.isfinite(v[0]):
        return "never, at any demand"
    if not math.isfinite(v[1]):
        return f"never in most draws (in the best tenth from {_count(v[0])} {unit})"
    if not math.isfinite(v[2]):
        return f"from {_count(v[1])} {unit} ({_count(v[0])} in P10, never in P90)"
    return f"from {_count(v[1])} {unit} (P10-P90 {_count(v[0])} to {_count(v[2])})"


def years_words(y: list[float | None] | None) -> str:
    """Years to repay the NRE (P10, P50, P90), "never" where the chip does not pay back."""
    v = [x if _finite(x) else math.inf for x in (y or [None] * 3)]
    if not math.isfinite(v[0]):
        return "never repaid"
    if not math.isfinite(v[1]):
        return f"never repaid in most draws (in the best tenth in {v[0]:.1f} years)"
    if not math.isfinite(v[2]):
        return f"repaid in {v[1]:.1f} years ({v[0]:.1f} in P10, never in P90)"
    return f"repaid in {v[1]:.1f} years (P10-P90 {v[0]:.1f} to {v[2]:.1f})"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tokenfab")
    except PackageNotFoundError:   # running from a source tree that is not installed
        import tokenfab
        return getattr(tokenfab, "__version__", "unknown")


def _header(s: dict[str, Any]) -> str:
    """What was asked, of which run, by which tokenfab, when: a screenshot of the report must say so itself."""
    e = html.escape
    prob, st = s.get("problem") or {}, s.get("study") or {}
    question = st.get("question")
    if not question and prob:
        mix = ", ".join(f"{c['name']} {c.get('share', 1):.0%} on {c['model']}" for c in prob.get("classes", []))
        cons = prob.get("constraints") or {}
        demand = prob.get("demand_output_tokens_per_day")
        question = (f"Which chip serves {mix or ', '.join(prob.get('models', []))}"
                    + (f" at {_count(demand)} output tokens/day" if _finite(demand) else "")
                    + " cheapest: a custom chip"
                    + (f" on {str(cons['node']).upper()}" if cons.get("node") else "")
                    + (f" of at most {cons['power_w']:,} W" if cons.get("power_w") else "")
                    + ", or one bought?")
    date = s.get("date") or s.get("created") or _dt.date.today().isoformat()
    meta = f"run {e(str(s.get('run_id') or '-'))} &middot; tokenfab {e(_version())} &middot; {e(str(date)[:10])}"
    return ("<header><h1>tokenfab design</h1>" + (f"<p class='q'>{e(question)}</p>" if question else "")
            + f"<p class='meta'>{meta}</p></header>")


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
        rows.append([kind, html.escape(r["label"]), cell, _num(r.get("user_tps"), "{:.0f}"),
                     _num(r.get("tokens_per_j"), "{:.2f}"), _num(r.get("chips") or None, "{:,.0f}"),
                     html.escape(deps)])
    return _table(rows, ["kind", "chip", "$/Mtok (P10-P90)", "tok/s/user", "tok/J", "chips",
                         "deployment per class"])


def _assumptions(s: dict[str, Any]) -> str:
    rows = []
    for a in s["assumptions"]:
        name, unit = describe(a["name"])
        rng = "" if a.get("low") is None else f"{_val(a['low'])} - {_val(a['high'])}"
        val = "" if a.get("value") is None else _val(a["value"])
        src = a.get("source") or "-"
        link = f'<a href="{html.escape(src)}">{html.escape(src)}</a>' if src.startswith("http") else html.escape(src)
        rows.append([f"<span title='{html.escape(a['name'])}'>{html.escape(name)}</span>", html.escape(unit or "-"),
                     val, rng, link])
    return _table(rows, ["constant", "unit", "value", "range", "source"])


def _b(v: list[float], fmt: str = "${:,.3f}") -> str:
    return f"{_num(v[1], fmt)} ({_num(v[0], fmt)}-{_num(v[2], fmt)})"


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
                     "-" if key == "custom" else demand_words(o["payback_demand_tokens_per_day"], "tokens/day")])
    parts.append(_table(rows, ["option", "chip", "$/Mtok P50 (P10-P90)", "custom / it", "tokens/s per W", "chips",
                               "unit price", "payback demand P50"]))
    pb, bg = st["payback"], st["bargaining"]
    parts.append(f"<p>Demand from which the custom chip pays back its NRE and software against {e(pb['against'])}: "
                 f"{demand_words(pb['demand_tokens_per_day'])}. NRE at the study's demand: "
                 f"{years_words(pb['years_at_demand'])}.</p>")
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
    tor = [[e(describe(t["input"])[0]), e(describe(t["input"])[1] or "-"),
            f"{_val(t['range'][0])} - {_val(t['range'][1])}", _num(t["low"], "{:,.3f}"),
            _num(t["high"], "{:,.3f}"), e(str(t.get("source") or "-"))] for t in st["tornado"]]
    if st["tornado"]:
        parts.append("<h3>The five inputs that swing it most (custom / best-bought $/Mtok, base "
                     f"{_num(st['tornado'][0]['base'], '{:,.3f}')})</h3>"
                     + _table(tor, ["input", "unit", "range", "at low", "at high", "source"]))
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
                 f"(P10-P90 {_money(s['gpu_band'][0])}-{_money(s['gpu_band'][2])}). "
                 f"Break-even demand of the custom chip: {demand_words(be.get('demand_tokens_per_day'))}. "
                 f"NRE at this demand: {years_words(be.get('years_at_demand'))}.</p>")
    head += (f"<p>Screen: {s['search']['points_screened']:,} deployment points over "
             f"{s['search']['custom_evaluated']} of {s['search']['custom_space']:,} custom chips plus the catalog; "
             f"simulator on the best {tiers['k']}: Spearman rank agreement {rho}.</p>")
    style = (f"body{{font-family:sans-serif;font-size:{FONT_PX + 2}px;max-width:1200px;margin:auto}}"
             f"table{{border-collapse:collapse;font-size:{FONT_PX}px}}td,th{{border:1px solid #ccc;padding:3px 6px}}"
             ".q{font-size:1.2em;font-style:italic}.meta{color:#555}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>tokenfab design report</title>"
            f"<style>{style}</style></head><body>{_header(s)}{head}{_study(s.get('study') or {})}"
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
