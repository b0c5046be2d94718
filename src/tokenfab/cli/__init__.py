"""The `tokenfab` command: parse, call, print. Bad input: one line naming the field, exit code 2.

The commands live in one module per family (catalog, predict, calibrate, economics, silicon, fleet, simulate,
design, results) and are registered here, in the order `--help` lists them. Each family imports only `io`,
`options` and `common`, and loads its heavy modules inside the command, so start-up stays light."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenfab.cli import calibrate, catalog, design, economics, fleet, predict, results, silicon, simulate
from tokenfab.cli.base import App

app = App(add_completion=False, no_args_is_help=True,
          help="Design and price LLM-inference hardware: predict, calibrate, validate, compare, "
               "silicon, tco, breakeven, simulate, design, fleet.")
hardware_app = App(no_args_is_help=True, help="The accelerator catalog.")
model_app = App(no_args_is_help=True, help="The model zoo (or any HF config.json).")


def _version(show: bool) -> None:
    if show:
        from tokenfab import __version__
        print(f"tokenfab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Design and price LLM-inference hardware: predict, calibrate, validate, compare, silicon, tco, breakeven,
    simulate, design, fleet."""


for _command in (predict.predict, calibrate.calibrate, calibrate.validate, economics.compare, silicon.silicon,
                 economics.tco, economics.breakeven, fleet.fleet, simulate.simulate, design.design, results.results):
    app.command()(_command)
del _command
hardware_app.command("list")(catalog.hardware_list)
hardware_app.command("show")(catalog.hardware_show)
model_app.command("list")(catalog.model_list)
model_app.command("show")(catalog.model_show)
app.add_typer(hardware_app, name="hardware")
app.add_typer(model_app, name="model")
