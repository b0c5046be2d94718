"""`tokenfab predict`: JSON out, one query or a stream of them; bad input in one line, exit 2."""

import json

from typer.testing import CliRunner

from tokenfab.cli import app

runner = CliRunner()


def test_predict_single_query_prints_json():
    r = runner.invoke(app, ["predict", "--scenario", "prefill", "--hardware", "h100-sxm", "--model", "llama-2-7b",
                            "--input-len", "2048", "--precision", "fp8"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["id"] == "query" and out["predicted"]["ttft_ms_mean"] > 0


def test_predict_bad_input_is_one_line_and_nonzero():
    for args in (["--hardware", "nope", "--scenario", "memcopy"],
                 ["--hardware", "h100-sxm", "--scenario", "offline", "--model", "llama-2-7b", "--input-len", "-3",
                  "--output-len", "5"],
                 ["--hardware", "h100-sxm", "--scenario", "offline", "--model", "llama-3.1-70b", "--tp", "3",
                  "--devices", "3", "--input-len", "10", "--output-len", "5"],
                 ["--hardware", "h100-sxm"]):
        r = runner.invoke(app, ["predict", *args])
        assert r.exit_code == 2, args
        assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_predict_file_reports_bad_lines_and_goes_on(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"id": "ok", "scenario": "memcopy", "hardware": "h200"}\nnot json\n'
                 '{"id": "bad", "scenario": "memcopy", "hardware": "zz"}\n')
    r = runner.invoke(app, ["predict", "--queries", str(f)])
    assert r.exit_code == 0
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["ok", "line-2", "bad"]
    assert "predicted" in lines[0] and "error" in lines[1] and "error" in lines[2]
    same = runner.invoke(app, ["predict", "--queries", str(f), "--json"])   # JSON either way: one object a query
    assert same.exit_code == 0 and same.stdout == r.stdout


def test_missing_queries_file():
    r = runner.invoke(app, ["predict", "--queries", "/nonexistent.jsonl"])
    assert r.exit_code == 2 and "nonexistent" in r.stderr


def test_predict_moe_bad_input_names_the_field():
    base = ["predict", "--scenario", "static", "--hardware", "h200", "--model", "deepseek-r1", "--devices", "8",
            "--precision", "fp8", "--input-len", "1000", "--output-len", "100", "--batch", "8"]
    cases = [(["--tp", "8", "--ep", "3"], "ep"), (["--tp", "8", "--mtp", "9"], "mtp"),
             (["--tp", "8", "--mtp", "1", "--accept", "3"], "accept")]
    for extra, field in cases:
        r = runner.invoke(app, base + extra)
        assert r.exit_code == 2 and field in r.stderr and len(r.stderr.strip().splitlines()) == 1, (extra, r.stderr)
    r = runner.invoke(app, ["predict", "--scenario", "static", "--hardware", "h200", "--model", "llama-3.1-8b",
                            "--input-len", "100", "--output-len", "10", "--mtp", "1"])
    assert r.exit_code == 2 and "mtp" in r.stderr
    r = runner.invoke(app, ["predict", "--scenario", "static", "--hardware", "a100-sxm", "--model", "llama-3.1-8b",
                            "--precision", "fp8", "--input-len", "100", "--output-len", "10"])
    assert r.exit_code == 2 and "precision" in r.stderr


def test_predict_ep_and_mtp_move_the_answer():
    def tps(*extra):
        r = runner.invoke(app, ["predict", "--scenario", "static", "--hardware", "h200", "--model", "deepseek-r1",
                                "--devices", "8", "--precision", "fp8", "--input-len", "1000", "--output-len", "200",
                                "--batch", "256", *extra])
        assert r.exit_code == 0, r.stderr
        return json.loads(r.stdout)["predicted"]["output_tokens_per_s"]
    tp8 = tps("--tp", "8")
    assert tps("--tp", "1", "--ep", "8") != tp8
    assert tps("--tp", "8", "--mtp", "2") > tp8
