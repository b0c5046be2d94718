"""What the command-line tests share: the strict reading of `--json`, and the one-line error of bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app


def _strict_json(text: str) -> dict:
    """What `--json` promises: the whole of stdout is one JSON object, with no NaN or Infinity in it."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")
    obj = json.loads(text, parse_constant=refuse)
    assert isinstance(obj, dict), type(obj)
    return obj


def _one_line_error(args: list[str]) -> str:
    """Run the command; it must fail with exit code 2 and one line, `error: ...`, on stderr (returned)."""
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, (args, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    return lines[0]


@pytest.fixture
def strict_json():
    return _strict_json


@pytest.fixture
def one_line_error():
    return _one_line_error
