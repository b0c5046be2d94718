"""Options that several commands share, declared once (each takes its name from the parameter). `--json`, which
every answering command takes, is `JsonOpt` in `cli.io`, beside the printer it switches to."""

from __future__ import annotations

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
