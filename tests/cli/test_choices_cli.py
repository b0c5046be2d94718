"""Options whose value is one of a closed set: `--help` lists the set, read from the module that owns it; a value
outside it fails while the command line is parsed, with one line naming the option and what is allowed, exit code
2; a value inside it reaches the model as the plain string."""

from __future__ import annotations

import importlib
import json

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()

SIMULATE = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "100", "--output-len",
            "20", "--rate", "5", "--requests", "50", "--json"]
PREDICT = ["predict", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "512", "--output-len", "128"]
OFFLINE = [*PREDICT, "--scenario", "offline"]
BREAKEVEN = ["breakeven", "--design", "inference-hbm", "--model", "llama-3.1-8b", "--input-len", "1024",
             "--output-len", "256", "--samples", "200", "--json"]


def _ok_json(key: str, value: str):
    """The command answered, and its JSON carries the value as given."""
    def check(r) -> None:
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)[key] == value
    return check


def _answered(r) -> None:
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)


def _went_on_to(needle: str):
    """The value was taken and the command got past parsing to a check of its own (for commands too slow, or
    needing a device, to run here)."""
    def check(r) -> None:
        assert r.exit_code == 2 and needle in r.stderr and "allowed" not in r.stderr, r.output
    return check


# (command line without the option, option, where its values live, a value that must work, how to check it worked)
CHOICES = [
    (["silicon", "h100-like", "--samples", "0", "--json"], "--yield-model", "tokenfab.silicon.cost:YIELD_MODELS",
     "murphy", _ok_json("yield_model", "murphy")),
    (BREAKEVEN, "--partner", "tokenfab.economics:PARTNERS", "in-house", _ok_json("partner", "in-house")),
    (SIMULATE, "--router", "tokenfab.serve.cluster:ROUTERS", "round-robin", _answered),
    (SIMULATE, "--preemption", "tokenfab.serve.simulate:PREEMPTION_MODES", "swap", _answered),
    (SIMULATE, "--precision", "tokenfab.units:PRECISION_BYTES", "fp8", _answered),
    (SIMULATE, "--kv-precision", "tokenfab.units:PRECISION_BYTES", "fp8", _answered),
    (PREDICT, "--scenario", "tokenfab.queries:SCENARIOS", "offline", _answered),
    (OFFLINE, "--precision", "tokenfab.units:PRECISION_BYTES", "fp8", _answered),
    (OFFLINE, "--kv-precision", "tokenfab.units:PRECISION_BYTES", "fp8", _answered),
    (OFFLINE, "--power-scope", "tokenfab.perf.energy:POWER_SCOPES", "facility", _ok_json("power_scope", "facility")),
    (["design", "--samples", "1"], "--backend", "tokenfab.search.backends:BACKENDS", "ray",
     _went_on_to("--samples = 1")),
    (["calibrate", "--data", "none.jsonl"], "--device", "tokenfab.calibrate.torchenv:DEVICES", "cpu",
     _went_on_to("not both")),
]


def _values(source: str) -> tuple[str, ...]:
    module, name = source.split(":")
    return tuple(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize("base, option, source, good, worked", CHOICES,
                         ids=[f"{c[0][0]}{c[1]}" for c in CHOICES])
def test_closed_set_options(base, option, source, good, worked, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # `design` would open ./tokenfab.duckdb
    values = _values(source)
    assert good in values
    r = runner.invoke(app, [base[0], "--help"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if f" {option} " in line)
    following = r.stdout.splitlines()[r.stdout.splitlines().index(row):]
    assert any(f"allowed: {', '.join(values)}" in line for line in following[:3]), r.stdout

    r = runner.invoke(app, [*base, option, "no-such-value"])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.splitlines() == [f"error: {option} 'no-such-value': allowed {', '.join(values)}"]

    worked(runner.invoke(app, [*base, option, good]))


def test_a_bad_choice_fails_before_any_work():
    """Parsed before the command runs: the model named is never loaded, the store never opened."""
    r = runner.invoke(app, ["simulate", "--model", "no-such-model", "--hardware", "no-such-chip", "--router", "x"])
    assert r.exit_code == 2 and r.stderr.startswith("error: --router 'x': allowed "), r.output
    r = runner.invoke(app, ["design", "--store", "/no/such/folder/x.duckdb", "--backend", "x"])
    assert r.exit_code == 2 and r.stderr.startswith("error: --backend 'x': allowed "), r.output


def test_start_up_imports_none_of_the_owning_modules():
    """The sets are read when a command parses or shows help, so `tokenfab` itself stays light."""
    import subprocess
    import sys
    code = ("import sys, typer.main; from tokenfab.cli import app; typer.main.get_command(app); "
            "print(sorted(m for m in ('tokenfab.queries', 'tokenfab.serve.cluster', 'tokenfab.silicon', "
            "'tokenfab.economics', 'tokenfab.calibrate', 'tokenfab.search.backends', 'tokenfab.perf.energy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
