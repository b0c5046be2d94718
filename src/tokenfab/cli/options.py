"""Options that several commands share, declared once (each takes its name from the parameter). `--json`, which
every answering command takes, is `JsonOpt` in `cli.io`, beside the printer it switches to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelOpt = Annotated[str, typer.Option(help="zoo model id or config.json path")]
CalibrationOpt = Annotated[str | None, typer.Option(help="calibration profile JSON (default: shipped)")]
WorkloadOpt = Annotated[str | None, typer.Option(help="traffic preset: its request-weighted mean lengths")]
InputLenOpt = Annotated[float | None, typer.Option(help="prompt tokens per request")]
OutputLenOpt = Annotated[float | None, typer.Option(help="generated tokens per request")]
UtilisationOpt = Annotated[float, typer.Option(help="share of hours at full throughput")]
SamplesOpt = Annotated[int, typer.Option(help="Monte Carlo samples")]
SeedOpt = Annotated[int, typer.Option(help="seed of the Monte Carlo draws over uncertain constants")]

# The DuckDB results store of `design`, `fleet` and `results`: one name everywhere (`--db`, its older spelling on
# `design` and `results`, still works but is not listed; see `HIDDEN_ALIASES`)
STORE_DEFAULT = Path("tokenfab.duckdb")
StoreOpt = Annotated[Path, typer.Option("--store", "--db", help="DuckDB results store")]

# Older spellings kept working, left out of `--help` so each idea shows one name: --db (--store), --traffic
# (--workload), --top-k (--top)
HIDDEN_ALIASES = frozenset({"--db", "--traffic", "--top-k"})
