"""User YAML: bounded aliases and size, YAML 1.2 numbers; each entry point says so in one line."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.yaml_input import UserYamlError, load_user_yaml

runner = CliRunner()
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_numbers_read_as_yaml_1_2():
    data = load_user_yaml("a: 5.0e12\nb: 5e12\nc: 12\nd: 1_000\ne: 2026-01\nf: .5\ng: 1.5")
    assert data == {"a": 5e12, "b": 5e12, "c": 12, "d": 1000, "e": "2026-01", "f": 0.5, "g": 1.5}
    assert isinstance(data["c"], int) and isinstance(data["a"], float)


def test_an_alias_bomb_is_refused_at_once():
    started = time.perf_counter()
    with pytest.raises(UserYamlError, match="expand to more than"):
        load_user_yaml(BOMB)
    assert time.perf_counter() - started < 1.0


def test_an_oversized_file_is_refused():
    with pytest.raises(UserYamlError, match="larger than"):
        load_user_yaml("a: " + "x" * 3_000_000)


@pytest.mark.parametrize("command", [["design", "--problem"], ["fleet"], ["silicon"]])
def test_every_entry_point_refuses_the_bomb_in_one_line(tmp_path, command):
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    r = runner.invoke(app, [*command, str(f)])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert "expand to more than" in err and len(err.splitlines()) == 1
