"""The report's plots as Plotly figures, built from a design summary (shared by HTML and tests)."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from tokenfab.labels import readable

COMPONENTS = ("silicon", "hbm", "package", "partner_margin", "accelerator", "server_network", "facility", "power",
              "maintenance", "nre", "software")
FONT_PX = 14   # plot text stays legible when a figure is pasted onto a slide

def _style(fig: go.Figure) -> go.Figure:
    fig.update_layout(font={"size": FONT_PX}, title_font={"size": FONT_PX + 4}, hoverlabel={"font_size": FONT_PX})
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)   # larger tick labels must push the axis title out, not under the plot
    return fig


def _positive(values: list[float]) -> list[float]:
    return [v for v in values if isinstance(v, int | float) and 0 < v < math.inf] or [1.0]


def log_axis(values: list[float], tickformat: str, **extra: Any) -> dict[str, Any]:
    """A log axis whose labels all carry their full value (1-2-5 steps over a short span, whole decades over a
    long one; other minor ticks unlabelled): plotly's default labels the 2s and 5s with a bare digit, so $0.3
    could read as 3."""
    pos = _positive(values)
    lo, hi = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos)))
    steps = (1, 2, 5) if hi - lo <= 2 else (1,)
    ticks = [m * 10.0 ** k for k in range(lo, hi + 1) for m in steps]
    return {"type": "log", "tickvals": ticks, "tickformat": tickformat, "ticks": "outside",
            "minor": {"dtick": "D1", "ticks": "outside", "ticklen": 3, "showgrid": True}, **extra}


def _dollar_format(values: list[float]) -> str:
    """Full-value dollar ticks with enough decimals for the smallest decade the values reach."""
    low = min(_positive(values))
    return f"$,.{max(0, -math.floor(math.log10(low)))}~f"


def pareto(s: dict[str, Any]) -> go.Figure:
    pts = s["pareto"]
    fig = go.Figure()
    for custom, front, name, symbol in ((True, True, "custom (Pareto)", "diamond"), (False, True, "catalog (Pareto)",
                                        "circle"), (True, False, "custom", "diamond-open"),
                                        (False, False, "catalog", "circle-open")):
        sel = [p for p in pts if p["custom"] == custom and p["front"] == front]
        if not sel:
            continue
        fig.add_trace(go.Scatter(
            x=[p["usd_per_mtok"] for p in sel], y=[p["user_tps"] for p in sel], mode="markers", name=name,
            marker={"symbol": symbol, "size": [6 + 2 * p["tokens_per_j"] for p in sel],
                    "color": [p["tokens_per_j"] for p in sel], "coloraxis": "coloraxis"},
            text=[f"{p['label']} (speed floor {p['floor']:g} tok/s)" for p in sel],
            hovertemplate="%{text}<br>$%{x:.3f}/Mtok, %{y:.0f} tok/s/user<br>%{marker.color:.2f} tok/J<extra></extra>"))
    xs = [p["usd_per_mtok"] for p in pts]
    # legend in a row under the plot, colour bar alone on the right: the two never overlap
    fig.update_layout(title="Pareto front: $/Mtok vs per-user tokens/s (colour and size: tokens/J)",
                      xaxis=log_axis(xs, _dollar_format(xs), title="$ per million output tokens (log)"),
                      yaxis={"title": "output tokens/s per user"},
                      coloraxis={"colorbar": {"title": {"text": "tokens/J"}, "x": 1.02, "xanchor": "left"}},
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.22, "yanchor": "top"},
                      margin={"b": 110})
    return fig


def breakdown(s: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    labels = [f"custom: {s['custom']['label']}"] + ([f"GPU: {s['gpu']['label']}"] if s.get("gpu") else [])
    parts = [s["breakdown"]["custom"]] + ([s["breakdown"]["gpu"]] if s.get("gpu") else [])
    for comp in COMPONENTS:
        vals = [p.get(comp, 0.0) for p in parts]
        if any(vals):
            fig.add_trace(go.Bar(name=comp, x=labels, y=vals))
    fig.update_layout(barmode="stack", title="Cost breakdown ($ per million output tokens)",
                      yaxis={"title": "$/Mtok"})
    return fig


def roofline(s: dict[str, Any]) -> go.Figure:
    r = s["roofline"]
    ops = r["ops"]
    peak, bw = r["peak_flops"], r["mem_bw"]
    xs = [0.1, 1e4]
    ridge = peak / bw if bw else 1.0
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[xs[0], ridge, xs[1]], y=[xs[0] * bw, peak, peak], mode="lines",
                             name=f"roof ({peak / 1e12:,.0f} TFLOP/s, {bw / 1e12:.1f} TB/s)"))
    for phase, symbol in (("decode", "circle"), ("prefill", "square")):
        sel = [o for o in ops if o["phase"] == phase]
        fig.add_trace(go.Scatter(x=[o["intensity"] for o in sel], y=[o["flops_per_s"] for o in sel], mode="markers",
                                 name=phase, marker={"symbol": symbol, "size": 9},
                                 text=[f"{o['class']}: {o['op']}" for o in sel],
                                 hovertemplate="%{text}<br>%{x:.1f} FLOP/B, %{y:.3s}FLOP/s<extra></extra>"))
    fig.update_layout(title=f"Roofline of {r['chip']} against the workload's operators",
                      xaxis=log_axis(xs, ",~g", title="arithmetic intensity (FLOP/byte, log)"),
                      yaxis=log_axis([xs[0] * bw, peak, *(o["flops_per_s"] for o in ops)], "~s", exponentformat="SI",
                                     title="attained throughput (FLOP/s, log)"))
    return fig


def tornado(s: dict[str, Any]) -> go.Figure:
    bars = list(reversed(s["tornado"]))
    base = bars[0]["base"] if bars else 0.0
    fig = go.Figure()
    names = [readable(b["constant"]) for b in bars]
    fig.add_trace(go.Bar(y=names, x=[b["low"] - base for b in bars], base=base, orientation="h",
                         name="input at its low"))
    fig.add_trace(go.Bar(y=names, x=[b["high"] - base for b in bars], base=base, orientation="h",
                         name="input at its high"))
    fig.update_layout(barmode="overlay", title=f"Sensitivity of the custom chip's $/Mtok (nominal ${base:.3f})",
                      xaxis={"title": "$ per million output tokens", "tickprefix": "$"})
    return fig


def build_or_buy(s: dict[str, Any]) -> go.Figure:
    """$/Mtok (P50 with P10-P90 bars) of the custom chip and the best bought options, in each scenario."""
    st = s["study"]
    fig = go.Figure()
    names = [sc["name"] for sc in st["scenarios"]]
    for label, key, best in (("custom", "custom_usd_per_mtok", False),
                             ("best bought", "best_bought_usd_per_mtok", True)):
        vals = [sc[key] for sc in st["scenarios"]]
        text = [sc["best_bought"] if best else st["options"]["custom"]["label"] for sc in st["scenarios"]]
        fig.add_trace(go.Bar(name=label, x=names, y=[v[1] for v in vals], text=text,
                             textposition="outside" if best else "none",
                             error_y={"type": "data", "symmetric": False, "array": [v[2] - v[1] for v in vals],
                                      "arrayminus": [v[1] - v[0] for v in vals]},
                             hovertemplate="%{text}: $%{y:.3f}/Mtok<extra></extra>"))
    fig.update_layout(barmode="group", title=f"Build or buy at first delivery {st['first_delivery']}: $/Mtok P50 "
                                             "(P10-P90) by scenario", yaxis={"title": "$ per million output tokens"})
    return fig


def figures(s: dict[str, Any]) -> dict[str, go.Figure]:
    out = {"pareto": pareto(s), "breakdown": breakdown(s), "roofline": roofline(s), "tornado": tornado(s)}
    if s.get("study") and "error" not in s["study"]:
        out["build_or_buy"] = build_or_buy(s)
    return {name: _style(fig) for name, fig in out.items()}
