"""What every query planner shares: the one-line error, the plan a query becomes, and its request lengths.

A `Plan` holds everything that does not depend on efficiency parameters (operator tables, batching
schedules, request samples), so calibration can re-time hundreds of queries per parameter set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tokenfab import catalog
from tokenfab.hardware import Chip
from tokenfab.perf.params import EffParams
from tokenfab.queries import Query

# MLPerf rows carry no mean prompt length; each MLPerf model maps to its dataset preset.
MLPERF_DATASETS = {
    "llama-2-70b": "mlperf-openorca-llama2-70b",
    "mixtral-8x7b": "mlperf-mixtral-8x7b",
    "llama-3.1-8b": "mlperf-cnndm-llama3.1-8b",
    "gpt-j-6b": "mlperf-cnndm-gptj",
    "llama-3.1-405b": "mlperf-llama3.1-405b",
    "deepseek-r1": "mlperf-deepseek-r1",
}


class QueryError(ValueError):
    """A query that cannot be answered; the message is the one-line reason."""


@dataclass(frozen=True)
class Plan:
    """A query made ready to time: `evaluate(params)` returns the predicted metrics."""

    query: Query
    chip: Chip
    evaluate: Callable[[EffParams], dict[str, float]]
    fabric: str | None = None   # the fabric whose collectives this answer depends on, if any


def query_lengths(q: Query, model_id: str) -> tuple[float, float]:
    isl, osl = q.input_len, q.output_len
    if isl is None:
        name = q.dataset or (MLPERF_DATASETS.get(model_id) if q.engine.startswith("mlperf") else None)
        presets = catalog.datasets()
        if name is None or name not in presets:
            raise QueryError("field 'input_len' is null and no dataset preset applies: give input_len or dataset "
                             f"(one of {', '.join(sorted(presets))})")
        isl = float(presets[name]["input_mean"])
        osl = osl or float(presets[name]["output_mean"])
    if osl is None:
        raise QueryError("field 'output_len' is required for this scenario (a positive number of tokens)")
    return float(isl), float(osl)


__all__ = ["MLPERF_DATASETS", "Plan", "QueryError", "query_lengths"]
