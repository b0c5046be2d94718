import pytest

from tokenfab import serving_query
from tokenfab.predict import predict_one
from tokenfab.queries import parse_query

SERVER = {"id": "s", "scenario": "server", "hardware": "h100-sxm", "model": "llama-3.1-8b", "devices": 1,
          "engine": "vllm", "input_len": 256, "output_len": 1024, "input_len_exact": True, "rate": 2.0}


def test_a_run_too_short_for_the_batch_to_fill_is_rerun_long_enough(monkeypatch):
    """The first run's length comes from a guessed time per token; a guess 50x too short reads the ramp (a
    false saturation) unless the run is lengthened to a few request lifetimes."""
    sized = predict_one(parse_query(SERVER))["predicted"]
    monkeypatch.setattr(serving_query, "SERVING_REQUESTS", 20)
    monkeypatch.setattr(serving_query, "TOKEN_TIME_GUESS_S", 0.001)
    serving_query._SIMULATIONS.clear()
    short = predict_one(parse_query({**SERVER, "id": "short"}))["predicted"]
    assert "saturated" not in short
    assert short["output_tokens_per_s"] == pytest.approx(2.0 * 1024, rel=0.1)
    assert short["tpot_ms_mean"] == pytest.approx(sized["tpot_ms_mean"], rel=0.1)


def test_a_server_query_names_its_client_cap_in_concurrency_or_the_note():
    assert serving_query.client_cap(parse_query({**SERVER, "concurrency": 64})) == 64
    noted = parse_query({**SERVER, "note": "vllm bench serve, max concurrency 10,800 at the configured rate"})
    assert serving_query.client_cap(noted) == 10_800
    assert serving_query.client_cap(parse_query(SERVER)) is None


def test_a_binding_client_cap_bounds_the_batch_and_the_throughput():
    fast = {**SERVER, "rate": 40.0, "output_len": 256}
    free = predict_one(parse_query(fast))["predicted"]
    capped = predict_one(parse_query({**fast, "id": "capped", "concurrency": 8}))["predicted"]
    assert capped["output_tokens_per_s"] < 0.7 * free["output_tokens_per_s"]
    assert capped["tpot_ms_mean"] < free["tpot_ms_mean"]
