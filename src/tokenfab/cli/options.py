"""Options that several commands share, declared once (each takes its name from the parameter). `--json`, which
every answering command takes, is `JsonOpt` in `cli.io`, beside the printer it switches to."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tokenfab.cli.io import fail

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


def one_of(source: str) -> Callable[..., str | None]:
    """The callback of an option whose value is one of a closed set. `source`, "module:NAME", is the tuple (or the
    dict, by its keys) of the module that owns the values, so the command line cannot drift from the model; it is
    imported when the command parses or shows its help, never at start-up. A value outside the set fails while the
    command line is parsed, before any work, with one line naming the option and what is allowed (exit code 2);
    `--help` lists the set under the option's help (`base._Command`). The value stays a plain str."""
    module, _, name = source.partition(":")

    @functools.cache
    def allowed() -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(module), name))

    def check(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
        if value is not None and not ctx.resilient_parsing and value not in allowed():
            flag = next((o for o in param.opts if o not in HIDDEN_ALIASES), param.opts[0])
            fail(f"{flag} {value!r}: allowed {', '.join(allowed())}")
        return value
    check.one_of = allowed   # type: ignore[attr-defined]  # what `--help` lists
    return check


def allowed_values(param: object) -> tuple[str, ...] | None:
    """The closed set of an option declared with `one_of` (None for any other parameter)."""
    callback = getattr(param, "callback", None)
    allowed = getattr(getattr(callback, "__wrapped__", callback), "one_of", None)
    return None if allowed is None else allowed()
