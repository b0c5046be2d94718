"""The command line as a whole: --version, help on every option, one strict JSON object from every answering
command, number flags finite."""

import pytest
from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_version_and_model_list():
    from tokenfab import __version__
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"tokenfab {__version__}"
    r = runner.invoke(app, ["model", "list"])
    assert r.exit_code == 0 and "deepseek-v3" in r.stdout and "MoE, MLA" in r.stdout


def test_every_option_of_every_command_says_what_it_is():
    import typer.main
    cmd = typer.main.get_command(app)
    missing = []
    for name, sub in cmd.commands.items():
        for sub_name, c in (sub.commands.items() if hasattr(sub, "commands") else [(name, sub)]):
            missing += [f"{name} {sub_name} {p.opts}" for p in c.params
                        if p.param_type_name == "option" and not getattr(p, "help", None)]
    assert not missing, missing


@pytest.mark.parametrize("args, key", [
    (["hardware", "list"], "accelerators"),
    (["hardware", "show", "h100-sxm"], "dense_tflops"),
    (["model", "list"], "models"),
    (["model", "show", "mixtral-8x7b"], "kv_bytes_per_token"),
    (["compare", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "512", "--output-len", "128"],
     "options"),
    (["silicon", "inference-hbm", "--samples", "200"], "area_mm2"),
    (["silicon", "--check"], "median_abs_error"),
    (["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "1024", "--output-len", "256",
      "--samples", "200"], "usd_per_mtok_out"),
    (["breakeven", "--design", "inference-hbm", "--model", "llama-3.1-8b", "--input-len", "1024", "--output-len",
      "256", "--samples", "200"], "break_even_years"),
    (["results", "--store", "{tmp}/none.duckdb"], "runs"),
    (["predict", "--scenario", "memcopy", "--hardware", "h200"], "predicted"),
])
def test_every_answering_command_prints_one_strict_json_object(tmp_path, args, key, strict_json):
    r = runner.invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--json"])
    assert r.exit_code == 0, r.output
    assert key in strict_json(r.stdout)


@pytest.mark.parametrize("args, needle", [
    (["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "10", "--output-len", "10",
      "--volume", "nan"], "--volume nan"),
    (["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "10", "--output-len", "10",
      "--volume", "-5"], "--volume -5"),
    (["breakeven", "--design", "inference-hbm", "--input-len", "10", "--output-len", "10", "--demand", "nan"],
     "--demand nan"),
    (["silicon", "inference-hbm", "--volume", "inf"], "--volume inf"),
    (["compare", "--model", "llama-3.1-8b", "--input-len", "inf", "--output-len", "10"], "--input-len inf"),
])
def test_number_flags_must_be_finite_and_sensible(args, needle):
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_one_name_per_idea_across_commands(tmp_path):
    """The store is --store, the traffic --workload, the best N --top on every command; the older spellings still
    parse but --help lists one name. Token lengths are floats (means) wherever they are taken."""
    import typer.main

    from tokenfab.cli.options import HIDDEN_ALIASES
    cmd = typer.main.get_command(app)
    opts = {name: {o: p for p in sub.params for o in p.opts} for name, sub in cmd.commands.items()}
    for name in ("design", "fleet", "results"):
        assert "--store" in opts[name] and opts[name]["--store"].default.name == "tokenfab.duckdb", name
        assert "--db" not in runner.invoke(app, [name, "--help"]).stdout
    assert "--workload" in opts["design"] and "--workload" in opts["tco"] and "--workload" in opts["simulate"]
    assert "--top" in opts["design"] and "--top" in opts["compare"]
    for name, by_opt in opts.items():
        for alias in HIDDEN_ALIASES & set(by_opt):
            assert by_opt[alias].opts[0] not in HIDDEN_ALIASES, (name, alias)   # an alias is never the name
        for flag in ("--input-len", "--output-len"):
            # simulate's are fixed per-request lengths of generated traffic, whole tokens (not a mean)
            if flag in by_opt and name != "simulate":
                assert by_opt[flag].type_descriptor.annotation is float, (name, flag)
    r = runner.invoke(app, ["results", "--db", str(tmp_path / "none.duckdb"), "--json"])
    assert r.exit_code == 0 and '"store"' in r.stdout
