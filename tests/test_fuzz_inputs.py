"""Fuzz the other entry points: command-line flags, user YAML (problems, designs, plans, workloads) and traces.
Invariant: an answer, or one line of error and exit 2; never a traceback, a hang or a NaN."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.fleet.plan import FleetError, load_plan
from tokenfab.search.problem import DesignInputError, DesignProblem
from tokenfab.silicon import DesignError, load_design
from tokenfab.workload import WorkloadError, iter_trace, load_workload

runner = CliRunner()
def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

flag_value = st.one_of(st.sampled_from(["1", "8", "512", "0", "-1", "nan", "inf", "1e308", "abc", "", "h100-sxm",
                                        "llama-3.1-8b", "fp8", "[/x]"]), st.text(max_size=8))
flags = st.lists(st.tuples(st.sampled_from(["--scenario", "--hardware", "--model", "--devices", "--tp",
                                            "--input-len", "--output-len", "--batch", "--rate", "--precision",
                                            "--power-cap-w", "--power-scope", "--engine", "--max-batch"]),
                           flag_value), min_size=1, max_size=6)


@fuzz(400)
@given(flags, st.sampled_from(["offline", "static", "prefill", "gemm", "memcopy"]))
def test_fuzz_predict_flags(pairs, scenario):
    args = ["predict", "--scenario", scenario, "--hardware", "h100-sxm"]
    for flag, value in pairs:
        args += [flag, value]
    r = runner.invoke(app, args)
    assert r.exit_code in (0, 2), (args, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception))
    if r.exit_code == 0:
        assert "NaN" not in r.stdout and "Infinity" not in r.stdout


scalar = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                   st.booleans(), st.none())
tree = st.recursive(scalar, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), kids, max_size=3)),
                    max_leaves=12)
keys = {
    "problem": ["traffic", "models", "constraints", "assign", "space", "deployment", "demand_output_tokens_per_day"],
    "plan": ["name", "model", "start", "months", "demand", "hardware", "datacenter", "scenarios"],
    "design": ["name", "node", "clock_ghz", "cores", "matrix", "memory", "sram", "vector", "packaging"],
    "workload": ["classes", "arrival", "rate", "name"],
}
documents = st.sampled_from(sorted(keys)).flatmap(
    lambda kind: st.tuples(st.just(kind), st.dictionaries(st.sampled_from(keys[kind]), tree, max_size=5)))


def _dump(obj) -> str:
    import yaml
    return yaml.safe_dump(obj, allow_unicode=True)


@fuzz(400)
@given(doc=documents)
def test_fuzz_user_yaml(doc, tmp_path_factory):
    kind, obj = doc
    path = tmp_path_factory.mktemp("y") / f"{kind}.yaml"
    path.write_text(_dump(obj))
    loaders = {"problem": (DesignProblem.load, DesignInputError), "plan": (load_plan, FleetError),
               "design": (load_design, DesignError), "workload": (load_workload, WorkloadError)}
    load, error = loaders[kind]
    try:
        load(path)
    except error as err:
        assert "\n" not in str(err).strip()


rows = st.lists(st.tuples(st.one_of(st.floats(-10, 1e6), st.sampled_from([math.nan, math.inf])),
                          st.integers(-5, 5000), st.integers(-5, 5000)), max_size=12)


@fuzz(300)
@given(lines=rows, garbage=st.booleans())
def test_fuzz_traces(lines, garbage, tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "trace.csv"
    body = "".join(f"{t},ChatGPT,{i},{o},{i + o},Conversation log\n" for t, i, o in lines)
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" + body
                    + ("x,y,z\n" if garbage else ""))
    try:
        for table in iter_trace(path):
            assert all(math.isfinite(a) and a >= 0 for a in table.arrival)
    except WorkloadError as err:
        assert "\n" not in str(err).strip()
