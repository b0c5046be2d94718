"""Render a design run's summary: a self-contained HTML report (Plotly) and PNGs (Matplotlib).

Renders results only: everything it shows comes from the summary dict the search stored.
"""

from tokenfab.report.html import write_html
from tokenfab.report.png import write_pngs

__all__ = ["write_html", "write_pngs"]
