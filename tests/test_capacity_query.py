"""Capacity under an SLO: the answer keeps every limit, a little more load breaks one, tighter limits never raise it;
saturated server queries are flagged; bad `slo` objects are one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tokenfab.capacity_query import Probe
from tokenfab.cli import app
from tokenfab.model import load_model
from tokenfab.perf.params import shipped_calibration
from tokenfab.predict import predict_one, query_deployment, query_replicas
from tokenfab.queries import parse_query, slo_limits
from tokenfab.silicon import resolve_chip

runner = CliRunner()
BASE = {"scenario": "capacity", "hardware": "h100-sxm", "model": "llama-3.1-8b", "input_len": 1024,
        "output_len": 256, "precision": "fp8"}


def capacity(**slo: float) -> dict:
    out = predict_one(parse_query({**BASE, "slo": slo}))
    assert "predicted" in out, out
    return out["predicted"]


def test_answer_keeps_every_limit_and_a_little_more_load_breaks_one():
    slo = {"ttft_ms_p99": 500.0, "tpot_ms_p99": 30.0}
    got = capacity(**slo)
    rate = got["requests_per_s"]
    assert got["tpot_ms_p99"] <= 30.0 and got["ttft_ms_p99"] <= 500.0
    q = parse_query({**BASE, "slo": slo})
    chip = resolve_chip(q.hardware)
    model = load_model(q.model)
    dep = query_deployment(q, model, chip)
    probe = Probe(q, model, chip, dep, query_replicas(q, dep), 1024.0, 256.0)
    probe.dep = dep.with_(max_batch=int(got["max_batch"]))      # the tuned server's batch limit
    params = shipped_calibration().for_chip(chip)
    assert probe(rate * 0.999, params)[0]
    assert not probe(rate * 1.06, params)[0]          # the bisection's 2% plus the answer's rounding


def test_a_tuned_batch_limit_sits_under_the_tpot_limit_and_beats_the_preset():
    tuned = capacity(ttft_ms_p99=2000.0, tpot_ms_p99=20.0)
    preset = predict_one(parse_query({**BASE, "slo": {"ttft_ms_p99": 2000.0, "tpot_ms_p99": 20.0},
                                      "max_batch": 1024}))["predicted"]
    assert tuned["max_batch"] < preset["max_batch"] == 1024
    assert tuned["requests_per_s"] >= preset["requests_per_s"]
    looser = capacity(ttft_ms_p99=2000.0, tpot_ms_p99=60.0)
    assert looser["max_batch"] >= tuned["max_batch"]


def test_every_predicted_estimate_has_a_band_around_it():
    out = predict_one(parse_query({**BASE, "slo": {"ttft_ms_p99": 2000.0, "tpot_ms_p99": 30.0}}))
    band = out["band"]
    assert "capacity_probes" not in band and "max_batch" not in band
    for metric in ("requests_per_s", "output_tokens_per_s", "ttft_ms_p99"):
        lo, hi = band[metric]
        assert lo < out["predicted"][metric] < hi


def test_tighter_limits_never_raise_capacity():
    loose = capacity(ttft_ms_p99=2000.0, tpot_ms_p99=60.0)["requests_per_s"]
    tight = capacity(ttft_ms_p99=2000.0, tpot_ms_p99=20.0)["requests_per_s"]
    tighter = capacity(ttft_ms_p99=2000.0, tpot_ms_p99=12.0)["requests_per_s"]
    assert loose >= tight >= tighter > 0
    assert loose > tighter


def test_any_percentile_and_e2e_limits_are_read():
    assert slo_limits({"tpot_ms_p90": 40, "e2e_ms_p99.9": 9000}) == [("tpot", 90.0, 40.0), ("e2e", 99.9, 9000.0)]
    got = capacity(tpot_ms_p90=20.0, e2e_ms_p99=20000.0)
    assert got["tpot_ms_p90"] <= 20.0 and got["e2e_ms_p99"] <= 20000.0


def test_saturated_server_query_is_flagged_with_its_capacity():
    q = parse_query({**BASE, "scenario": "server", "rate": 200.0})
    out = predict_one(q)
    assert out.get("saturated") is True
    cap = out["predicted"]["capacity_requests_per_s"]
    assert 0 < cap < 200.0
    assert out["predicted"]["requests_per_s"] <= cap * 1.05
    calm = predict_one(parse_query({**BASE, "scenario": "server", "rate": cap * 0.5}))
    assert "saturated" not in calm and "capacity_requests_per_s" not in calm["predicted"]


@pytest.mark.parametrize("slo, rate, needle", [
    ("ttft_ms_p99=2000,colour_ms_p99=3", None, "unknown limit 'colour_ms_p99'"),
    ("ttft_ms_p100=2000", None, "percentile must lie in (0, 100)"),
    ("ttft_ms_p0=2000", None, "percentile must lie in (0, 100)"),
    ("ttft_ms_p99=-5", None, "positive number of milliseconds"),
    ("ttft_ms_p99", None, "LIMIT=MILLISECONDS"),
    ("ttft_ms_p99=2000", 3.0, "field 'rate'"),
])
def test_bad_slo_is_one_line_exit_2(slo, rate, needle):
    args = ["predict", "--scenario", "capacity", "--hardware", "h100-sxm", "--model", "llama-3.1-8b",
            "--input-len", "1024", "--output-len", "256", "--slo", slo]
    if rate is not None:
        args += ["--rate", str(rate)]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and needle in err, err


def test_capacity_query_without_slo_is_refused_in_a_file(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({**BASE, "id": "c"}) + "\n")
    r = runner.invoke(app, ["predict", "--queries", str(f)])
    assert r.exit_code == 0
    line = json.loads(r.stdout)
    assert "field 'slo' is required" in line["error"]


def test_the_answer_is_the_same_with_the_confirmation_run_in_this_process(monkeypatch):
    """The full run at the rate just under saturation goes on in a forked child; run in the parent instead
    (where fork is unavailable) it must give the same answer."""
    from tokenfab import capacity_query, forked
    slo = {"ttft_ms_p99": 2000.0, "tpot_ms_p99": 60.0}
    capacity_query._ANSWERS.clear()
    forked_answer = capacity(**slo)

    def no_fork(_method: str):
        raise ValueError("cannot find context for 'fork'")
    monkeypatch.setattr(forked.multiprocessing, "get_context", no_fork)
    capacity_query._ANSWERS.clear()
    assert capacity(**slo) == forked_answer
