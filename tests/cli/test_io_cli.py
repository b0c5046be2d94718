"""Output paths checked before any work, and `--json` strict through nested values."""

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args, needle", [
    (["design", "--report", "/missing/dir/r.html"], "does not exist"),
    (["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "10", "--output-len", "10",
      "--rate", "1", "--records", "/dev/null"], "not a regular file"),
    (["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "10", "--output-len", "10",
      "--rate", "1", "--timeline", "/"], "not a regular file"),
])
def test_output_paths_are_checked_before_any_work(args, needle):
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_output_path_through_a_symlink_is_refused(tmp_path):
    target = tmp_path / "real.html"
    target.write_text("x")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    r = runner.invoke(app, ["design", "--report", str(link)])
    assert r.exit_code == 2 and "symbolic link" in r.stderr
    assert target.read_text() == "x"


def test_print_json_is_strict_through_nested_values(capsys, strict_json):
    import numpy as np

    from tokenfab.cli.io import print_json
    print_json({"a": float("nan"), "b": (1.0, float("inf")), "c": [{"d": np.float32(2.5)}], "e": np.array([1, 2]),
                "f": np.float64("-inf"), "g": np.int64(3)})
    assert strict_json(capsys.readouterr().out) == {"a": None, "b": [1.0, None], "c": [{"d": 2.5}], "e": [1, 2],
                                                    "f": None, "g": 3}
