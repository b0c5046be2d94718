"""`tokenfab hardware` and `tokenfab model`: the catalog and the zoo, and unknown ids refused."""

from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_hardware_and_model_commands():
    assert runner.invoke(app, ["hardware", "list"]).exit_code == 0
    r = runner.invoke(app, ["hardware", "show", "mi300x"])
    assert r.exit_code == 0 and "Infinity Fabric" in r.stdout
    assert runner.invoke(app, ["hardware", "show", "mi301x"]).exit_code == 2
    r = runner.invoke(app, ["model", "show", "mixtral-8x7b"])
    assert r.exit_code == 0 and "46.70 B" in r.stdout
    assert runner.invoke(app, ["model", "show", "nope"]).exit_code == 2
