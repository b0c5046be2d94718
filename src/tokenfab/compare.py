"""Rank catalog accelerators for one model and request shape: best layout per chip, side by side."""

from __future__ import annotations

from dataclasses import dataclass

from tokenfab.hardware import Chip, all_chips
from tokenfab.perf.params import Calibration
from tokenfab.predict import QueryError, answer, plan_query
from tokenfab.queries import Query

TP_CHOICES = (1, 2, 4, 8)
PRECISION_CHOICES = ("fp4", "fp8", "bf16")


@dataclass(frozen=True)
class Option:
    """The best way found to serve the model on one chip type."""

    chip: Chip
    tp: int
    precision: str
    tokens_per_s_per_device: float
    tpot_ms: float
    concurrency: float
    tokens_per_joule: float
    usd_per_mtok: float | None        # on the chip's typical cloud price
    usd_per_mtok_low: float | None
    usd_per_mtok_high: float | None


def hardware_spec(chip: Chip) -> str:
    """What names this chip in a query: its catalog id, or the design file it was built from."""
    return chip.sources.get("design_path", chip.id)


def _usd_per_mtok(usd_hr: float | None, tps_per_device: float) -> float | None:
    if not usd_hr:
        return None
    return usd_hr / 3600.0 / tps_per_device * 1e6


def best_option(chip: Chip, model: str, isl: float, osl: float, calibration: Calibration | None = None,
                engine: str = "trtllm") -> Option | None:
    """Try every TP and precision the chip supports; keep the highest output tokens/s per device."""
    best: Option | None = None
    for precision in PRECISION_CHOICES:
        if not chip.supports(precision):
            continue
        for tp in TP_CHOICES:
            q = Query(id="compare", scenario="offline", hardware=hardware_spec(chip), model=model, devices=tp, tp=tp,
                      precision=precision, kv_precision=precision if precision != "fp4" else "fp8",
                      engine=engine, input_len=isl, output_len=osl, metric="output_tokens_per_s")
            try:
                m = answer(plan_query(q), calibration)
            except QueryError:
                continue
            tps = m["output_tokens_per_s_per_device"]
            if best is None or tps > best.tokens_per_s_per_device:
                cloud = chip.cloud_usd_hr
                best = Option(
                    chip=chip, tp=tp, precision=precision, tokens_per_s_per_device=tps,
                    tpot_ms=m["tpot_ms_mean"], concurrency=m["concurrency"],
                    tokens_per_joule=1.0 / m["joules_per_output_token"] if m["joules_per_output_token"] else 0.0,
                    usd_per_mtok=_usd_per_mtok(cloud.value if cloud else None, tps),
                    usd_per_mtok_low=_usd_per_mtok(cloud.low if cloud else None, tps),
                    usd_per_mtok_high=_usd_per_mtok(cloud.high if cloud else None, tps),
                )
    return best


def compare(model: str, isl: float, osl: float, calibration: Calibration | None = None) -> list[Option]:
    """Every catalog accelerator that can serve the model, best first (output tokens/s per device)."""
    options = [best_option(chip, model, isl, osl, calibration) for chip in all_chips()]
    return sorted((o for o in options if o is not None), key=lambda o: -o.tokens_per_s_per_device)
