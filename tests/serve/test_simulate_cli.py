"""`tokenfab simulate`: presets, traces, SLOs, pools, outputs, and one clear line for bad input."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()
DATA = Path(__file__).resolve().parent.parent / "data"
BASE = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"]


def _run(*args: str) -> dict:
    res = runner.invoke(app, [*BASE, *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_fixed_lengths_json_and_records(tmp_path: Path) -> None:
    rec, trace = tmp_path / "req.parquet", tmp_path / "timeline.json"
    m = _run("--input-len", "512", "--output-len", "64", "--rate", "8", "--requests", "300", "--records", str(rec),
             "--timeline", str(trace))
    assert m["requests"] == 300 and m["ttft_ms_p99"] >= m["ttft_ms_p50"] > 0
    assert pq.read_table(rec).num_rows == 300
    events = json.loads(trace.read_text())
    assert {e.get("name") for e in events} >= {"queue", "prefill", "decode"}
    assert not list(tmp_path.glob("*.part"))


def test_preset_classes_carry_their_slos() -> None:
    m = _run("--workload", "chat", "--rate", "2", "--requests", "200")
    chat = m["classes"]["chat"]
    assert chat["ttft_slo_ms"] == pytest.approx(450.0) and 0 <= chat["slo_met_share"] <= 1


def test_trace_file_and_disaggregation() -> None:
    m = _run("--workload", str(DATA / "azure_sample.csv"), "--devices", "2", "--disaggregate", "1:1")
    assert m["requests"] == 300 and m["devices"] == 2


@pytest.mark.parametrize(("args", "words"), [
    (["--workload", "nosuch"], "preset"),
    (["--input-len", "100", "--output-len", "10", "--rate", "0"], "--rate"),
    (["--input-len", "100", "--output-len", "10", "--rate", "-2"], "--rate"),
    (["--input-len", "100", "--output-len", "10", "--ttft-slo", "200"], "percentile"),
    (["--input-len", "100", "--output-len", "10", "--router", "random"], "--router"),
    (["--input-len", "100", "--output-len", "10", "--disaggregate", "2"], "--disaggregate"),
    (["--input-len", "100", "--output-len", "10", "--devices", "3", "--tp", "2"], "--devices"),
    (["--output-len", "10"], "--input-len"),
])
def test_bad_input_is_one_line(args: list[str], words: str) -> None:
    res = runner.invoke(app, [*BASE, *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], res.stderr


def test_malformed_trace_row_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    rows = (DATA / "azure_sample.csv").read_text().splitlines()[:6]
    rows[4] = "2023-11-16 18:15:47.0000000,12x,40"
    bad.write_text("\n".join(rows) + "\n")
    res = runner.invoke(app, [*BASE, "--workload", str(bad)])
    assert res.exit_code == 2
    assert ":5:" in res.stderr and "ContextTokens" in res.stderr


def test_band_reruns_at_the_step_models_error() -> None:
    m = _run("--input-len", "512", "--output-len", "64", "--rate", "8", "--requests", "300", "--band")
    assert set(m["band"]) >= {"ttft_ms_p50", "tpot_ms_p50", "tpot_ms_p99"}
    for name in ("ttft_ms_p50", "tpot_ms_p50"):
        low, high = m["band"][name]
        assert low < m[name] < high


def test_records_and_timeline_are_readable_by_all(tmp_path):
    import stat

    from typer.testing import CliRunner

    from tokenfab.cli import app
    rec, tl = tmp_path / "r.parquet", tmp_path / "t.json"
    r = CliRunner().invoke(app, ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input-len", "64",
                                 "--output-len", "8", "--rate", "5", "--requests", "50", "--records", str(rec),
                                 "--timeline", str(tl)])
    assert r.exit_code == 0, r.output
    for f in (rec, tl):
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044
    import pyarrow.parquet as pq
    rows = pq.read_table(rec).to_pylist()
    assert {"class_name", "ttft_s", "tpot_s", "e2e_s"} <= rows[0].keys()
    assert all(abs(x["e2e_s"] - (x["finish"] - x["arrival"])) < 1e-12 and x["ttft_s"] <= x["e2e_s"] for x in rows)


def test_a_run_that_serves_nobody_is_one_line_and_json_has_no_nan(tmp_path):
    import json

    from typer.testing import CliRunner

    from tokenfab.cli import app
    rec = tmp_path / "r.parquet"
    base = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--rate", "1", "--requests", "5"]
    r = CliRunner().invoke(app, [*base, "--input-len", "2000000", "--output-len", "10", "--records", str(rec)])
    assert r.exit_code == 2 and "every request was refused" in r.stderr and not rec.exists()
    r = CliRunner().invoke(app, [*base, "--input-len", "100", "--output-len", "1", "--json"])
    assert r.exit_code == 0 and "NaN" not in r.stdout
    assert json.loads(r.stdout)["tpot_ms_mean"] is None
