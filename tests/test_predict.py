"""The `predict` contract: metrics per scenario, error objects, determinism."""

import json

import pytest

from tokenfab.predict import predict_one
from tokenfab.queries import SCENARIO_METRICS, parse_query, read_queries


def test_every_answerable_calibration_query_carries_its_contract_metrics(calibration_lines):
    answered = 0
    for _ln, qid, q in read_queries(iter(calibration_lines)):
        assert not isinstance(q, str), q
        out = predict_one(q)
        if "error" in out:
            continue
        answered += 1
        wanted = set(SCENARIO_METRICS[q.scenario]) | {q.metric}
        assert wanted <= out["predicted"].keys(), qid
        assert all(v > 0 for v in out["predicted"].values()), qid
    assert answered >= 275   # every serving row too, through the simulator


def test_predictions_are_deterministic(calibration_lines):
    from tokenfab import serving_query
    queries = [q for _l, _i, q in read_queries(iter(calibration_lines))]
    serving = [q for q in queries if q.scenario == "server"][:3]
    queries = [q for q in queries if q.scenario != "server"] + serving

    def run():
        serving_query._SIMULATIONS.clear()   # re-simulate, not re-read the shared result
        return [json.dumps(predict_one(q), sort_keys=True) for q in queries]
    assert run() == run()


def _offline(**kw):
    base = dict(id="t", scenario="offline", hardware="h100-sxm", model="llama-3.1-8b", input_len=512,
                output_len=128, precision="fp8")
    return parse_query({**base, **kw})


@pytest.mark.parametrize("change, words", [
    ({"hardware": "h100-sxn"}, "hardware 'h100-sxn' unknown"),
    ({"model": "llama-9"}, "model 'llama-9' unknown"),
    ({"model": "llama-3.1-70b", "tp": 3, "devices": 3}, "tp = 3 does not divide"),
    ({"model": "llama-3.1-405b", "hardware": "l40s"}, "does not fit"),
    ({"precision": "fp7"}, "field 'precision'"),
])
def test_unanswerable_queries_give_one_line_errors(change, words):
    out = predict_one(_offline(**change))
    assert words in out["error"] and "\n" not in out["error"]


@pytest.mark.parametrize("field, value", [("input_len", -1), ("output_len", 0), ("scenario", "warp"),
                                          ("devices", 0)])
def test_invalid_fields_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        _offline(**{field: value})


def test_malformed_jsonl_line_yields_error_and_continues():
    lines = ['{"id": "a", "scenario": "memcopy", "hardware": "h100-sxm"}', "{oops", "",
             '{"id": "c", "scenario": "memcopy", "hardware": "mi300x"}']
    got = list(read_queries(iter(lines)))
    assert [g[1] for g in got] == ["a", "line-2", "c"]
    assert isinstance(got[1][2], str) and "malformed JSON" in got[1][2]


def test_more_tensor_parallel_devices_raise_throughput_of_70b():
    tps = [predict_one(_offline(model="llama-3.1-70b", tp=tp, devices=tp))["predicted"]["output_tokens_per_s"]
           for tp in (1, 2, 4, 8)]
    assert tps == sorted(tps)


def test_mlperf_rows_use_dataset_presets():
    q = parse_query({"id": "m", "scenario": "offline", "hardware": "h200", "model": "llama-2-70b",
                     "engine": "mlperf-v4.1-trtllm", "input_len": None, "output_len": 291, "precision": "fp8",
                     "devices": 8, "tp": 1, "replicas": 8})
    assert predict_one(q)["predicted"]["output_tokens_per_s"] > 0
    no_preset = parse_query({**q.model_dump(), "engine": "trtllm", "input_len": None})
    assert "input_len" in predict_one(no_preset)["error"]


def test_predict_many_in_workers_equals_one_by_one(calibration_lines):
    from tokenfab import serving_query
    from tokenfab.predict import predict_many
    queries = [q for _l, _i, q in read_queries(iter(calibration_lines))]
    serving = [q for q in queries if q.scenario == "server"][:6]     # two runs, each asked for several metrics
    picked = serving + [q for q in queries if q.scenario == "offline"][:3]
    parallel = predict_many(picked, workers=2)
    serving_query._SIMULATIONS.clear()
    assert parallel == [predict_one(q) for q in picked]
