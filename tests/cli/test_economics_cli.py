"""`tokenfab compare`, `silicon`, `tco` and `breakeven`: tables, JSON bands, the network's price."""

import json

from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_compare_ranks_by_throughput_per_device():
    r = runner.invoke(app, ["compare", "--model", "llama-3.1-8b", "--input-len", "512", "--output-len", "128"])
    assert r.exit_code == 0, r.output
    assert "h100-sxm" in r.stdout and "b200" in r.stdout
    assert runner.invoke(app, ["compare", "--model", "llama-3.1-8b", "--input-len", "-1"]).exit_code == 2


def test_silicon_tco_breakeven_commands(tmp_path):
    r = runner.invoke(app, ["silicon", "inference-hbm", "--samples", "2000"])
    assert r.exit_code == 0, r.output
    assert "yield" in r.stdout and "TDP estimate" in r.stdout and "NRE" in r.stdout
    r = runner.invoke(app, ["silicon", "--check"])
    assert r.exit_code == 0 and "median |error|" in r.stdout
    r = runner.invoke(app, ["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "1024",
                            "--output-len", "256", "--samples", "2000"])
    assert r.exit_code == 0, r.output
    assert "capex share" in r.stdout and "cloud rental" in r.stdout
    r = runner.invoke(app, ["breakeven", "--design", "inference-hbm", "--gpu", "h100-sxm", "--model", "llama-3.1-8b",
                            "--input-len", "1024", "--output-len", "256", "--samples", "2000"])
    assert r.exit_code == 0, r.output
    assert "break-even volume" in r.stdout


def test_tco_prices_the_network_by_cluster_size(one_line_error):
    base = ["tco", "--hardware", "h100-sxm", "--model", "llama-3.1-8b", "--input-len", "1024", "--output-len", "256",
            "--samples", "0", "--json"]
    small, big = (json.loads(runner.invoke(app, [*base, "--cluster", n]).stdout) for n in ("8", "100000"))
    assert small["network"]["scaleout_tiers"] == 1 and big["network"]["scaleout_tiers"] == 3
    assert small["network"]["scaleup_kind"] == "nvlink" and small["network"]["usd_per_accelerator"]["scaleup"] > 0
    assert big["usd_per_mtok_out"]["p50"] > small["usd_per_mtok_out"]["p50"]
    r = runner.invoke(app, ["tco", "--hardware", "gb200", "--model", "llama-3.1-8b", "--input-len", "1024",
                            "--output-len", "256", "--samples", "0"])
    assert r.exit_code == 0 and "network per accelerator" in r.stdout, r.output
    assert "error:" in one_line_error([*base, "--cluster", "0"])


def test_json_bands_are_numbers_and_never_becomes_null(strict_json):
    r = runner.invoke(app, ["breakeven", "--design", "inference-hbm", "--model", "llama-3.1-8b", "--input-len",
                            "1024", "--output-len", "256", "--samples", "200", "--json"])
    be = strict_json(r.stdout)
    band = be["custom"]["usd_per_mtok_out"]
    assert set(band) == {"p10", "p50", "p90"} and band["p10"] <= band["p50"] <= band["p90"]
    assert all(v is None or isinstance(v, float) for v in be["break_even_years"].values())   # inf: never -> null
    silicon = strict_json(runner.invoke(app, ["silicon", "inference-hbm", "--samples", "200", "--json"]).stdout)
    assert set(silicon["tdp_estimate_w"]) == {"nominal", "p10", "p50", "p90"}
