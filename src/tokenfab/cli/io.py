"""The command line's output channels and its one way to fail (shared by every command module)."""

from __future__ import annotations

import json
import math
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

# `--json` on every command that answers, beside the printer it switches to
JsonOpt = Annotated[bool, typer.Option("--json", help="print the answer as one JSON object")]


class _LazyConsole:
    """A Rich console made on first use: a command that prints only JSON (`simulate --json`) never loads Rich.
    Attributes pass through to the console; hand `.rich` to Rich objects that take a `console=`."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr

    @cached_property
    def rich(self) -> Console:
        from rich.console import Console
        # markup off: class, option and chip names are the user's, and "[/oops]" is a name, not a style
        if self._stderr:
            return Console(stderr=True, markup=False)
        # Tables are wide; when printing to a pipe or file keep them readable instead of 80 columns.
        return Console(width=None if sys.stdout.isatty() else 150, markup=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


def titled(title: str, rest: str) -> Any:
    """A line whose first words are bold (the consoles take no markup, so user strings print as written)."""
    from rich.text import Text
    lead = title.lstrip("\n")
    return Text("\n" * (len(title) - len(lead))) + Text(lead, style="bold") + Text(rest)


def check_output(flag: str, path: Any, folder: bool = False) -> None:
    """Refuse, before any work, an output path that cannot be written as a regular file (or a folder, for
    `folder`): its directory must exist, and what is there now must be of that kind (not a device, a symlink or
    a folder where a file goes)."""
    import os
    from pathlib import Path
    if path is None:
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        fail(f"{flag} {str(target)!r}: the folder {str(parent)!r} does not exist")
    if target.is_symlink():
        fail(f"{flag} {str(target)!r}: a symbolic link; give a regular file path")
    if target.exists():
        kind_ok = target.is_dir() if folder else target.is_file()
        if not kind_ok:
            fail(f"{flag} {str(target)!r}: exists and is not a {'folder' if folder else 'regular file'}")
    if not os.access(parent, os.W_OK):
        fail(f"{flag} {str(target)!r}: the folder {str(parent)!r} is not writable")


out = _LazyConsole()
err = _LazyConsole(stderr=True)


def fail(message: str) -> NoReturn:
    """Bad input: one line naming the field and what is allowed, exit code 2."""
    err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def no_nan(obj: Any) -> Any:
    """`obj` as plain JSON values: JSON has no NaN or Infinity, so a figure with no sample (TPOT of one-token
    replies) or one that never comes (a break-even at infinity) is null. NumPy scalars become numbers, NumPy arrays
    and tuples lists."""
    if isinstance(obj, dict):
        return {str(k): no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [no_nan(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):   # a NumPy scalar or array, without importing NumPy
        return no_nan(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_json(obj: dict[str, Any]) -> None:
    """Print `obj` as one strict JSON object on stdout (what `--json` promises a script: one parseable line);
    a value JSON cannot hold (a date, a path) is written as its text."""
    print(json.dumps(no_nan(obj), sort_keys=True, allow_nan=False, default=str))
