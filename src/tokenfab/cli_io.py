"""The command line's output channels and its one way to fail (shared by every command module)."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console

# Tables are wide; when printing to a pipe or file keep them readable instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Bad input: one line naming the field and what is allowed, exit code 2."""
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)
