"""Per-request lengths of a benchmark dataset from its catalog statistics (quantiles, mean, std)."""

from __future__ import annotations

from typing import Any

import numpy as np

# Output-length spread where a dataset publishes only the mean of what the model generates: the
# coefficient of variation of the dataset's reference answers stands in (an assumption, flagged).
DEFAULT_OUTPUT_CV = 0.8


def dataset_lengths(preset: dict[str, Any], rng: np.random.Generator, n: int,
                    output_mean: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw `n` (input, output) lengths: inputs by interpolating the published quantiles (min, median, p90,
    p99, max), outputs lognormal with the published mean and std (or the reference answers' spread)."""
    inputs = _from_quantiles(preset, rng, n)
    mean = float(output_mean or preset["output_mean"])
    std = preset.get("output_std")
    if std is None and preset.get("output_reference_mean") and preset.get("output_reference_std"):
        std = mean * float(preset["output_reference_std"]) / float(preset["output_reference_mean"])
    std = float(std) if std is not None else DEFAULT_OUTPUT_CV * mean
    sigma2 = np.log1p((std / mean) ** 2)
    outputs = rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), n)
    cap = float(preset.get("output_max") or np.inf)
    outputs = np.clip(np.rint(outputs), 1, cap)
    outputs *= mean / outputs.mean()            # keep the published mean exactly (clipping shifts it)
    return inputs, np.maximum(np.rint(outputs), 1).astype(np.int64)


def _from_quantiles(preset: dict[str, Any], rng: np.random.Generator, n: int) -> np.ndarray:
    mean = float(preset["input_mean"])
    points = [(0.0, preset.get("input_min")), (0.5, preset.get("input_median")), (0.9, preset.get("input_p90")),
              (0.99, preset.get("input_p99")), (1.0, preset.get("input_max_observed") or preset.get("input_max"))]
    known = [(p, float(v)) for p, v in points if v is not None]
    if len(known) < 3:
        return np.full(n, int(round(mean)), dtype=np.int64)
    probs, values = zip(*known, strict=True)
    draws = np.interp(rng.random(n), probs, values)
    return np.maximum(np.rint(draws), 1).astype(np.int64)
