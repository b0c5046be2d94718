"""Helpers several command families share: the calibration profile, the chip of a hardware flag, sampled figures
as P50 (P10-P90) bands, the Monte Carlo sample count."""

from __future__ import annotations

from typing import Any

from tokenfab import catalog
from tokenfab.cli.io import fail


def load_cal(path: str | None):
    """`--calibration PATH`: the profile (the shipped one for None); one line naming the file when it is bad."""
    from tokenfab.perf.params import load_calibration
    try:
        return load_calibration(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"--calibration {path!r}: cannot read a calibration profile ({e})")


def hardware_chip(spec: str):
    """The chip of a hardware flag: a catalog id, a design YAML or a shipped design id."""
    if spec in catalog.accelerators():   # a catalog id needs none of the silicon model
        from tokenfab.hardware import load_chip
        return load_chip(spec)
    from tokenfab.silicon import DesignError, resolve_chip
    try:
        return resolve_chip(spec)
    except (KeyError, DesignError) as e:
        fail(str(e))


def band(x: Any, fmt: str = "{:,.0f}") -> str:
    """A sampled figure as the tables show it: P50 (P10-P90), or one number where the draws agree."""
    from tokenfab.constants import percentiles
    p10, p50, p90 = percentiles(x)
    if p10 == p90:
        return fmt.format(p50)
    return f"{fmt.format(p50)} ({fmt.format(p10)}-{fmt.format(p90)})"


def band_json(x: Any, nominal: Any = None) -> dict[str, float]:
    """A sampled figure as --json gives it: {"p10", "p50", "p90"} (and "nominal" where the table shows one),
    the numbers `band` formats."""
    from tokenfab.constants import percentiles
    percentile_band = dict(zip(("p10", "p50", "p90"), percentiles(x), strict=True))
    return percentile_band if nominal is None else {"nominal": float(nominal), **percentile_band}


def check_samples(samples: int) -> None:
    if samples < 0 or samples > 1_000_000:
        fail(f"--samples {samples}: allowed 0 (nominal only) to 1,000,000")
