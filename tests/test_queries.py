"""Bad queries cost only their own line: strict validation, per-line errors, strict JSON; and a fuzz suite whose
invariant is a finite, physically possible answer or one line of error."""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.predict import predict_one
from tokenfab.queries import SCENARIOS, parse_query, read_queries
from tokenfab.silicon import resolve_chip

runner = CliRunner()


@pytest.mark.parametrize("obj, needle", [
    ({"scenario": "offline", "hardware": "h100-sxm", "input_len": True, "output_len": 5}, "not true/false"),
    ({"scenario": "static", "hardware": "h100-sxm", "devices": 1, "replicas": 10**12}, "replicas"),
    ({"scenario": "static", "hardware": "h100-sxm", "devices": 8, "tp": 4, "replicas": 4}, "exceed devices = 8"),
    ({"scenario": "static", "hardware": "h100-sxm", "devices": 2, "tp": 4}, "field 'devices'"),
    ({"scenario": "offline", "hardware": "h100-sxm", "input_len": 1e308, "output_len": 3}, "input_len"),
    ({"scenario": "server", "hardware": "h100-sxm", "rate": math.inf}, "finite"),
    ({"scenario": "gemm", "hardware": "h100-sxm", "shape": {"m": math.inf, "n": 1, "k": 1}}, "shape.m"),
    ({"scenario": "memcopy", "hardware": "h100-sxm", "id": "x" * 5000}, "field 'id'"),
    ({"scenario": "offline", "hardware": "h100-sxm", "power_scope": "rack"}, "power_scope"),
])
def test_bad_fields_are_named(obj, needle):
    with pytest.raises(ValueError, match="field") as err:
        parse_query(obj)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_every_line_stands_alone():
    lines = [b'{"id": "a", "scenario": "memcopy", "hardware": "h200"}', b"\xff\xfe not utf-8",
             b'{"id": "b", "scenario": "server", "hardware": "h100-sxm", "rate": Infinity}',
             b"[" * 100_000, b'{"id": "c", "input_len": 1' + b"0" * 5000 + b"}", b"not json",
             b'{"id": "d", "scenario": "memcopy", "hardware": "h200"}']
    out = list(read_queries(lines))
    assert [qid for _ln, qid, _q in out] == ["a", "line-2", "line-3", "line-4", "line-5", "line-6", "d"]
    errors = [q for _ln, _id, q in out if isinstance(q, str)]
    assert len(errors) == 5 and all("\n" not in e for e in errors)
    assert "not UTF-8" in errors[0] and "Infinity" in errors[1] and "nested too deep" in errors[2]


def test_a_batch_with_bad_lines_answers_the_good_ones(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_bytes(b'{"id": "ok", "scenario": "memcopy", "hardware": "h200"}\n\xff bad\n'
                  b'{"id": "groq", "scenario": "gemm", "hardware": "ref-groq-lpu",'
                  b' "shape": {"m": 64, "n": 64, "k": 64}}\n'
                  b'{"id": "tiny", "scenario": "memcopy", "hardware": "h100-sxm",'
                  b' "shape": {"element_bytes": 1e-300}}\n')
    r = runner.invoke(app, ["predict", "--queries", str(f)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]   # strict JSON: json.loads refuses nothing here
    assert [x["id"] for x in lines] == ["ok", "line-2", "groq", "tiny"]
    assert "predicted" in lines[0] and "predicted" in lines[2]
    assert "element_bytes" in lines[3]["error"]
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout


# ---- fuzz: generated queries against every analytic scenario ------------------------------------------------

HARDWARE = ["h100-sxm", "h200", "a100-sxm", "mi300x", "l40s", "tpu-v6e", "ref-groq-lpu", "inference-hbm", "nope"]
MODELS = ["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "qwen3-30b-a3b", "gpt-oss-20b", None, "zz"]
FAST = [s for s in SCENARIOS if s not in ("server", "concurrency", "capacity")]
# a plausible query of each analytic scenario, then none, one or two of its fields made absurd: most reach the
# models, some test the schema
bad = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.integers(-10, 0),
                st.sampled_from([1e308, 10**12, "12", [], {}, None]))
tokens = st.one_of(st.sampled_from([1, 2, 8, 64, 128, 512, 1024, 4096, 32768]), st.floats(1.0, 50000.0))
layout = st.sampled_from([{}, {"devices": 1}, {"devices": 2, "tp": 2}, {"devices": 8, "tp": 8},
                          {"devices": 8, "tp": 2, "replicas": 4}, {"devices": 4, "pp": 2, "tp": 2},
                          {"devices": 8, "ep": 8}, {"devices": 16, "tp": 8, "pp": 2}])
counts = st.one_of(st.sampled_from([1, 2, 8, 64, 128, 512, 1024]), st.integers(1, 5000))
shape = st.one_of(
    st.fixed_dictionaries({"m": tokens, "n": tokens, "k": tokens}),                       # gemm
    st.fixed_dictionaries({"bytes": st.sampled_from([1e3, 1e6, 1e9, 4e9])}),              # allreduce
    st.fixed_dictionaries({}, optional={"kernel": st.sampled_from(["copy", "triad", "bogus"]),
                                        "element_bytes": st.sampled_from([1, 2, 4, 8, 16])}),  # memcopy
    st.fixed_dictionaries({"phase": st.just("decode"), "batch": counts, "kv_len": tokens}),  # layer
    st.fixed_dictionaries({"phase": st.just("prefill"), "seq_len": tokens}),
    st.dictionaries(st.sampled_from(["m", "n", "k", "bytes", "phase", "kv_len", "seq_len"]),
                    st.one_of(tokens, st.sampled_from(["decode", "x"])), max_size=4))
base = st.fixed_dictionaries(
    {"scenario": st.sampled_from(FAST), "hardware": st.sampled_from(HARDWARE), "model": st.sampled_from(MODELS),
     "precision": st.sampled_from([None, "fp8", "bf16", "fp4", "int4", "fp64", "weird"]),
     "input_len": tokens, "output_len": tokens},
    optional={"batch": counts, "concurrency": counts, "max_batch": counts, "mtp": st.integers(0, 3),
              "power_cap_w": st.floats(50.0, 2000.0), "shape": shape, "engine": st.sampled_from(
                  ["vllm", "sglang", "trtllm", "mlperf-v4.1-trtllm", "tgi", "made-up"]),
              "power_scope": st.sampled_from(["accelerator", "server", "facility"])})
spoil = st.lists(st.tuples(st.sampled_from(["devices", "tp", "replicas", "input_len", "output_len", "batch", "rate",
                                            "power_cap_w", "scenario", "hardware", "shape"]), bad), max_size=2)


def _build(parts) -> dict:
    obj, lay, spoiled = parts
    obj = {**obj, **lay}
    for key, value in spoiled:
        obj[key] = value
    return {k: v for k, v in obj.items() if v is not None}


query = st.tuples(base, layout, st.one_of(st.just([]), st.just([]), spoil)).map(_build)


def _physical(q, predicted: dict) -> None:
    """Finite answers, and the two that have a plain roofline under it."""
    assert all(math.isfinite(v) for v in predicted.values()), predicted
    chip = resolve_chip(q.hardware)
    if "gemm_tflops" in predicted:
        assert predicted["gemm_tflops"] * 1e12 <= chip.peak(q.precision or "bf16") * 1.001
    if "memcopy_tbps" in predicted:
        assert predicted["memcopy_tbps"] * 1e12 <= chip.mem_bw * 1.001


FUZZ_EXAMPLES = 5000


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(query)
def test_fuzz_answers_are_finite_and_physical_or_one_line(obj):
    started = time.perf_counter()
    try:
        q = parse_query(obj)
    except ValueError as err:
        assert "\n" not in str(err) and str(err).startswith("field")
        return
    out = predict_one(q)
    assert time.perf_counter() - started < 10.0          # no query stalls a batch
    if "error" in out:
        assert "\n" not in out["error"] and out["error"]
        assert not out["error"].startswith("cannot answer"), out["error"]   # a model failure, not a bad query
    else:
        _physical(q, out["predicted"])
    json.dumps(out, allow_nan=False)


def test_fuzz_lines_through_the_reader():
    lines = [json.dumps(x, allow_nan=True).encode() for x in (
        {"scenario": "gemm", "hardware": "h100-sxm", "shape": {"m": float("nan")}},
        {"scenario": "offline", "hardware": "h100-sxm", "output_len": float("inf")})]
    out = list(read_queries(lines))
    assert all(isinstance(q, str) and "not a number JSON allows" in q for _ln, _id, q in out)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_fuzz_raw_bytes_never_raise(data):
    for _ln, _qid, q in read_queries(data.split(b"\n")):
        assert isinstance(q, str) or q.scenario in SCENARIOS


def test_a_query_past_its_time_budget_is_its_own_error(tmp_path):
    f = tmp_path / "q.jsonl"
    slow = {"id": "slow", "scenario": "capacity", "hardware": "h200", "model": "llama-2-70b", "devices": 8, "tp": 1,
            "engine": "mlperf-v4.1-trtllm", "output_len": 290, "max_batch": 1024, "precision": "fp8",
            "slo": {"ttft_ms_p99": 2000}}
    f.write_text(json.dumps(slow) + "\n" + json.dumps({"id": "fast", "scenario": "memcopy", "hardware": "h200"}))
    from tokenfab import capacity_query
    capacity_query._ANSWERS.clear()          # not an answer another test already computed
    started = time.perf_counter()
    r = runner.invoke(app, ["predict", "--queries", str(f), "--budget-s", "0.5"])
    assert time.perf_counter() - started < 30
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert "time budget" in lines[0]["error"] and "predicted" in lines[1]
    import multiprocessing
    assert not multiprocessing.active_children()   # no forked simulation left running behind the error


def test_layer_lengths_must_be_possible():
    for shape, needle in (({"phase": "decode", "batch": 4, "kv_len": -5}, "shape.kv_len"),
                          ({"phase": "prefill", "seq_len": 0.5}, "shape.seq_len")):
        out = predict_one(parse_query({"scenario": "layer", "hardware": "h100-sxm", "model": "llama-3.1-8b",
                                       "shape": shape}))
        assert needle in out["error"]
