"""The command line's output channels and its one way to fail (shared by every command module)."""

from __future__ import annotations

import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A Rich console made on first use: a command that prints only JSON (`simulate --json`) never loads Rich.
    Attributes pass through to the console; hand `.rich` to Rich objects that take a `console=`."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr

    @cached_property
    def rich(self) -> Console:
        from rich.console import Console
        if self._stderr:
            return Console(stderr=True)
        # Tables are wide; when printing to a pipe or file keep them readable instead of 80 columns.
        return Console(width=None if sys.stdout.isatty() else 150)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


out = _LazyConsole()
err = _LazyConsole(stderr=True)


def fail(message: str) -> NoReturn:
    """Bad input: one line naming the field and what is allowed, exit code 2."""
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)
