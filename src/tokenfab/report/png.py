"""PNGs of the report's plots with Matplotlib (`--png`), for documents and slides."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tokenfab.report.figures import COMPONENTS, FONT_PX, readable

DPI = 110


def write_pngs(s: dict[str, Any], folder: str | Path) -> list[Path]:
    """The plots as PNGs in `folder`, text sized as the HTML report's, without touching Matplotlib's global rc."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"font.size": FONT_PX * 72 / DPI}):   # FONT_PX pixels at the dpi they are saved at
        return _draw(s, Path(folder))


def _draw(s: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

    def full_log(axis: Any, fmt: Any) -> None:
        """Label whole decades with their full value and leave the minor ticks bare, never a lone '2' or '5'."""
        axis.set_major_locator(LogLocator(base=10))
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(NullFormatter())

    folder.mkdir(parents=True, exist_ok=True)
    out = []

    def save(fig: Any, name: str) -> None:
        path = folder / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        out.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for custom, marker in ((True, "D"), (False, "o")):
        sel = [p for p in s["pareto"] if p["custom"] == custom]
        ax.scatter([p["usd_per_mtok"] for p in sel], [p["user_tps"] for p in sel], marker=marker,
                   c=[p["tokens_per_j"] for p in sel], label="custom" if custom else "catalog",
                   edgecolors=["k" if p["front"] else "none" for p in sel])
    ax.set_xscale("log")
    full_log(ax.xaxis, FuncFormatter(lambda v, _: f"${v:,.{max(0, -math.floor(math.log10(v)))}f}"))
    ax.set(xlabel="$ per million output tokens (log)", ylabel="output tokens/s per user", title="Pareto front")
    ax.legend()
    save(fig, "pareto")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    parts = [("custom", s["breakdown"]["custom"])] + ([("GPU", s["breakdown"]["gpu"])] if "gpu" in s["breakdown"]
                                                      else [])
    bottom = [0.0] * len(parts)
    for comp in COMPONENTS:
        vals = [p.get(comp, 0.0) for _, p in parts]
        if any(vals):
            ax.bar([n for n, _ in parts], vals, bottom=bottom, label=comp)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set(ylabel="$/Mtok", title="Cost breakdown")
    ax.legend(fontsize=7)
    save(fig, "breakdown")

    r = s["roofline"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    peak, bw = r["peak_flops"], r["mem_bw"]
    ridge = peak / bw if bw else 1.0
    ax.plot([0.1, ridge, 1e4], [0.1 * bw, peak, peak], "k-", label="roof")
    for phase, m in (("decode", "o"), ("prefill", "s")):
        sel = [o for o in r["ops"] if o["phase"] == phase]
        ax.scatter([o["intensity"] for o in sel], [o["flops_per_s"] for o in sel], marker=m, label=phase)
    ax.set_xscale("log")
    ax.set_yscale("log")
    full_log(ax.xaxis, FuncFormatter(lambda v, _: f"{v:,g}"))
    full_log(ax.yaxis, EngFormatter(sep=""))   # SI prefixes throughout: 1T, 10T, 1P
    ax.set(xlabel="arithmetic intensity (FLOP/byte, log)", ylabel="attained throughput (FLOP/s, log)",
           title=f"Roofline: {r['chip']}")
    ax.legend()
    save(fig, "roofline")

    bars = s["tornado"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    base = bars[0]["base"] if bars else 0.0
    names = [readable(b["constant"]) for b in bars][::-1]
    ax.barh(names, [b["low"] - base for b in bars][::-1], left=base, label="low")
    ax.barh(names, [b["high"] - base for b in bars][::-1], left=base, label="high", alpha=0.7)
    ax.set(xlabel="$/Mtok", title="Sensitivity (tornado)")
    ax.legend()
    save(fig, "tornado")
    return out
