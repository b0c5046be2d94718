"""The Typer the command tree is built on: start-up without the cyclic garbage collector, NumPy's BLAS on one
thread, and no command run with a non-finite number flag."""

from __future__ import annotations

import functools
import gc
import math
import os
from collections.abc import Callable
from typing import Any

import click
import typer
from typer.core import TyperCommand

from tokenfab.cli.io import fail
from tokenfab.cli.options import HIDDEN_ALIASES, allowed_values


class App(typer.Typer):
    """Typer, with the process's start-up run without the cyclic garbage collector, and NumPy's BLAS on one
    thread.

    Start-up (the command tree, the option parsers, the modules they load) builds only objects that live
    until exit, and collecting them again and again took ~10% of a short command. So `tokenfab` turns the
    collector off as the process starts, and each command turns it back on as its own work begins,
    after freezing what start-up built (full collections then skip it). The commands compute element-wise;
    a BLAS thread pool only costs start-up time (a user's own OPENBLAS_NUM_THREADS is kept)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before NumPy is first imported
        gc.disable()
        try:
            return super().__call__(*args, **kwargs)
        finally:
            gc.enable()

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        kwargs.setdefault("cls", _Command)
        register = super().command(*args, **kwargs)

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            register(_collecting(f))
            return f
        return decorator


class _Command(TyperCommand):
    """A command whose `--help` lists each option under its one current name: an older spelling kept as an alias
    (`--db` for `--store`, see `options.HIDDEN_ALIASES`) still parses, but is not shown. An option whose value is
    one of a closed set (`options.one_of`) lists the set on a line of its own under its help, `allowed: a, b, c`
    (the set is read from the module that owns it only now, when this command's help is asked for)."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        saved = [(p, p.opts, p.help) for p in self.params]
        for p, opts, help_text in saved:
            p.opts = [o for o in opts if o not in HIDDEN_ALIASES] or opts
            allowed = allowed_values(p)
            if allowed is not None:   # a paragraph of its own, wrapped between values, never inside one
                p.help = "\n\n".join(filter(None, (help_text, f"allowed: {', '.join(allowed)}")))
        try:
            super().format_help(ctx, formatter)
        finally:
            for p, opts, help_text in saved:
                p.opts, p.help = opts, help_text


def _collecting(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():   # start-up is over (in-process callers, such as tests, never turned it off)
            gc.freeze()
            gc.enable()
        for name, value in kwargs.items():   # a number flag given as nan or inf means nothing to any command
            if isinstance(value, float) and not math.isfinite(value):
                fail(f"--{name.replace('_', '-')} {value}: a finite number is required")
        return command(*args, **kwargs)
    return run
