"""The random-weight MoE/MLA layer the device benchmark times computes a real layer: absorbed MLA decode equals
the expanded prefill, grouped expert GEMMs equal a dense per-expert reference, skew concentrates the routing,
and every measured point is a `layer` query that tokenfab can predict."""

import importlib.util
import json
import math
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tokenfab.calibrate.device import measured_cpu_record  # noqa: E402
from tokenfab.calibrate.moe_bench import (  # noqa: E402
    CPU_GRID,
    LayerGrid,
    fit_experts,
    layer_config,
    layer_row,
    layer_spec,
    run_grid,
)
from tokenfab.calibrate.moe_layers import MoEBenchError, MoEDecoderLayer, fp8_kernel, grouped_kernel  # noqa: E402
from tokenfab.calibrate.torchenv import open_device  # noqa: E402
from tokenfab.hardware import chip_from_record  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402
from tokenfab.predict import _plan_layer, predict_one, query_deployment  # noqa: E402
from tokenfab.queries import parse_query  # noqa: E402
from tokenfab.query_hints import Hints, read_hints  # noqa: E402

MODELS = ("deepseek-v3", "qwen3-30b-a3b")
SMALL = LayerGrid((1, 2), (16,), (16,), 1000)


@pytest.fixture(scope="module")
def dev():
    return open_device("cpu", threads=1)


def tiny(dev, model, dtype=None, kernel=None):
    cfg, name = layer_config(model, tiny=True)
    spec = layer_spec(cfg, name)
    return MoEDecoderLayer(dev, spec, cfg, max_pos=64, dtype=dtype, kernel=kernel), cfg, name


@pytest.mark.parametrize("model", MODELS)
def test_layers_run_and_time(dev, model):
    layer, _cfg, _name = tiny(dev, model)
    times, failed = run_grid(layer, SMALL, False, "bf16")
    assert not failed and len(times) == len(SMALL.points()) == 3
    assert all(math.isfinite(t.seconds) and t.seconds > 0 and t.mode == "eager" for t in times)
    assert all(0 < t.load["busiest_expert_share"] <= 1 and t.load["experts_hit"] >= 1 for t in times)


@pytest.mark.parametrize("model", [*MODELS, "mixtral-8x7b"])
def test_decode_continues_prefill(dev, model):
    """DeepSeek: the absorbed decode (latent space) gives the expanded prefill's output for the last token."""
    layer, _cfg, _name = tiny(dev, model, dtype=torch.float32)
    assert layer.spec.is_mla == (model == "deepseek-v3")
    with torch.inference_mode():
        x = layer.hidden(2, 20)
        full = layer.prefill(x)[:, -1]
        cache = layer.cache(2, 20)
        layer.fill_cache(x[:, :19], cache)
        step = layer.decode(x[:, 19:], cache, 19)[:, 0]
        other = layer.decode(x[:, 19:], layer.cache(2, 20), 19)[:, 0]   # a random cache: another answer
    assert torch.allclose(step, full, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(other, full, atol=1e-2, rtol=1e-2)


def dense_reference(moe, x):
    """Every expert on every token, combined with the router's top-k weights (no sorting, no grouping)."""
    ids, weights = moe.route(x)
    f = torch.nn.functional
    out = torch.zeros_like(x)
    for e in range(moe.e):
        gate, up = f.linear(x, moe.w_gu[e]).chunk(2, dim=-1)
        y = f.linear(f.silu(gate) * up, moe.w_down[e])
        w = (weights * (ids == e)).sum(-1, keepdim=True).to(x.dtype)
        out += w * y
    if moe.shared is not None:
        gate, up = f.linear(x, moe.shared[0]).chunk(2, dim=-1)
        out += f.linear(f.silu(gate) * up, moe.shared[1])
    return out


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("kernel", "align"), [("grouped_mm", 1), ("grouped_mm", 4), ("expert_loop", 1)])
def test_expert_kernels_match_dense_reference(dev, model, kernel, align):
    layer, _cfg, _name = tiny(dev, model, dtype=torch.float32, kernel=kernel)
    moe = layer.moe
    moe.align = align   # align > 1: token groups padded, as the fp8 grouped GEMM runs them
    with torch.inference_mode():
        x = dev.randn(37, layer.spec.hidden)
        for routing in ("uniform", "skewed"):
            moe.set_routing(routing)
            ref = dense_reference(moe, x)
            assert torch.allclose(moe(x), ref, atol=1e-5, rtol=1e-4), routing


def scaled_grouped_mm_contract(a, b, scale_a, scale_b, offs=None, out_dtype=None):
    """torch._scaled_grouped_mm as its CUDA kernel takes it (2d x 3d, rowwise scales), emulated on the CPU:
    the layouts and shapes it checks are checked here too."""
    assert a.dtype == b.dtype == torch.float8_e4m3fn and a.dim() == 2 and b.dim() == 3
    assert a.stride(-1) == 1 and b.stride(-2) == 1, "mat_a row-major, mat_b column-major (transposed)"
    assert a.shape[1] % 16 == 0 and b.shape[1] % 16 == 0 and b.shape[2] % 16 == 0 and a.shape[1] == b.shape[1]
    assert scale_a.shape == (a.shape[0],) and scale_b.shape == (b.shape[0], b.shape[2])
    assert scale_a.dtype == scale_b.dtype == torch.float32
    assert offs.dtype == torch.int32 and offs.shape == (b.shape[0],) and int(offs[-1]) <= a.shape[0]
    out = torch.zeros(a.shape[0], b.shape[2], dtype=out_dtype)
    start = 0
    for g, end in enumerate(offs.tolist()):
        deq = a[start:end].float() * scale_a[start:end, None]
        out[start:end] = (deq @ (b[g].float() * scale_b[g][None, :])).to(out_dtype)
        start = end
    return out


@pytest.mark.parametrize(("kernel", "align"), [("scaled_mm_loop", 1), ("scaled_mm_loop", 16),
                                               ("scaled_grouped_mm", 16)])
def test_fp8_expert_weights_stay_close(dev, monkeypatch, kernel, align):
    """The fp8 path (e4m3 weights and activations, rowwise scales) tracks the bf16 layer to fp8 accuracy. The
    grouped kernel exists on GPUs only: its contract is emulated here."""
    if kernel == "scaled_grouped_mm":
        monkeypatch.setattr(torch, "_scaled_grouped_mm", scaled_grouped_mm_contract, raising=False)
    layer, _cfg, _name = tiny(dev, "deepseek-v3", dtype=torch.bfloat16)
    x = dev.randn(24, layer.spec.hidden, dtype=torch.bfloat16)
    with torch.inference_mode():
        ref = dense_reference(layer.moe, x).float()
        try:
            layer.moe.to_fp8(kernel)
            layer.moe.align = align
            got = layer.moe(x).float()
        except (RuntimeError, NotImplementedError) as err:
            pytest.skip(f"no fp8 _scaled_mm on this CPU build: {err}")
    assert layer.moe.w_gu is None and layer.moe.fp8[0].dtype == torch.float8_e4m3fn
    assert layer.moe.fp8[1].shape == (layer.spec.experts, 2 * layer.spec.expert_intermediate)
    assert (got - ref).norm() / ref.norm() < 0.1


def test_fp8_is_skipped_on_cpu_with_a_reason(dev):
    kernel, graphable, why = fp8_kernel(dev)
    assert kernel is None and not graphable and "CPU" in why
    assert grouped_kernel(dev)[0] == ("grouped_mm" if hasattr(torch, "_grouped_mm") else "expert_loop")


def test_skewed_routing_loads_the_busiest_expert_more(dev):
    layer, _cfg, _name = tiny(dev, "deepseek-v3")
    x = dev.randn(512, layer.spec.hidden, dtype=torch.bfloat16)
    busiest = {}
    with torch.inference_mode():
        for routing in ("uniform", "skewed"):
            layer.moe.set_routing(routing, zipf_s=1.0)
            layer.moe(x)
            busiest[routing] = layer.moe.load()["busiest_expert_share"]
    assert busiest["skewed"] > 1.5 * busiest["uniform"]
    assert busiest["uniform"] < 0.3   # 8 experts, top-2: about 1/8 each


def test_layer_configs():
    cfg, name = layer_config("deepseek-v3", tiny=True)
    spec = layer_spec(cfg, name)
    assert name == "deepseek-v3-tiny" and spec.is_mla and spec.experts == 8 and spec.shared_experts == 1
    cfg, name = layer_config("qwen3-30b-a3b", experts=4)
    assert name == "qwen3-30b-a3b-e4" and layer_spec(cfg, name).top_k == 4   # top-8 capped to 4 experts
    assert layer_config("mixtral-8x7b") == (load_config("mixtral-8x7b"), "mixtral-8x7b")
    with pytest.raises(MoEBenchError, match="no routed experts"):
        layer_config("llama-3.1-8b")
    full = load_model("deepseek-v3")
    assert fit_experts(full, LayerGrid((512,), (8192,), (8192,), 512 * 8192), 80 * 2**30) == 256
    assert fit_experts(full, LayerGrid((512,), (8192,), (8192,), 512 * 8192), 20 * 2**30) < 256


def load_config(model):
    from tokenfab import catalog
    return catalog.model_config(model)


def test_rows_are_layer_queries_tokenfab_predicts(dev, tmp_path):
    cpu = chip_from_record(measured_cpu_record("test cpu", 1, {"bf16": 5e10}, 1e10, 16 * 2**30, "2025-01-01"))
    params = shipped_calibration().for_chip(cpu)
    for model in MODELS:
        layer, cfg, name = tiny(dev, model)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(cfg))
        for routing in ("uniform", "skewed"):
            layer.moe.set_routing(routing)
            times, _failed = run_grid(layer, SMALL, False, "bf16")
            for lt in times:
                row = layer_row(lt, "cpu", name, str(path), "pytorch-x", "MoE")
                q = parse_query(row)
                assert (q.scenario, q.metric, q.batch, q.devices) == ("layer", "layer_ms", lt.batch, 1)
                assert q.shape == ({"phase": "decode", "kv_len": lt.length} if lt.phase == "decode"
                                   else {"phase": "prefill", "seq_len": lt.length})
                assert row["value"] == lt.seconds * 1e3 and row["routing"] == routing
                assert read_hints(q.engine, q.note) == Hints()   # the note implies nothing about the deployment
                spec = load_model(q.model)
                plan = _plan_layer(q, spec, cpu, query_deployment(q, spec, cpu))
                ms = plan.evaluate(params)["layer_ms"]
                assert math.isfinite(ms) and ms > 0
                on_gpu = predict_one(parse_query({**row, "hardware": "h100-sxm"}))
                assert math.isfinite(on_gpu["predicted"]["layer_ms"]) and on_gpu["predicted"]["layer_ms"] > 0
    assert len({p for p in CPU_GRID.points()}) == len(CPU_GRID.points())


def load_script():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_moe_layers.py"
    spec = importlib.util.spec_from_file_location("gpu_moe_layers", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_script_writes_its_three_files_on_cpu(tmp_path, capsys):
    script = load_script()
    started = time.perf_counter()
    assert script.main([str(tmp_path), "--device", "cpu", "--budget-s", "60"]) == 0
    assert time.perf_counter() - started < 30
    rows = [json.loads(x) for x in (tmp_path / "moe-steps.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * len(CPU_GRID.points()) and len({r["id"] for r in rows}) == len(rows)
    assert all(r["value"] > 0 and r["scenario"] == "layer" for r in rows)
    assert {r["routing"] for r in rows} == {"uniform", "skewed"} and {r["precision"] for r in rows} == {"bf16"}
    for r in rows[:: len(CPU_GRID.points())]:
        out = predict_one(parse_query({**r, "hardware": "h100-sxm"}))
        assert out["predicted"]["layer_ms"] > 0, out
    power = json.loads((tmp_path / "moe-power.json").read_text())
    assert power["meter"]["method"] == "unavailable" and power["points"] == []
    env = json.loads((tmp_path / "moe-env.json").read_text())
    assert env["kernels"]["fp8"]["kernel"] is None and any("fp8" in s for s in env["skipped"])
    assert set(env["layers"]) == {"deepseek-v3-tiny", "qwen3-30b-a3b-tiny"} and not env["stopped_at_budget"]
    assert env["layers"]["deepseek-v3-tiny"]["spec"]["experts"] == 8
    assert Path(env["layers"]["deepseek-v3-tiny"]["model_ref"]).is_file()


def test_script_stops_at_its_budget(tmp_path):
    script = load_script()
    assert script.main([str(tmp_path), "--device", "cpu", "--budget-s", "1"]) == 0
    env = json.loads((tmp_path / "moe-env.json").read_text())
    assert env["stopped_at_budget"] and (tmp_path / "moe-steps.jsonl").is_file()
    assert (tmp_path / "moe-power.json").is_file()


class ConstantPowerNVML:
    """The NVML calls the power meter makes, for a board drawing 350 W without an energy counter."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        raise RuntimeError("Not Supported")

    def nvmlDeviceGetPowerUsage(self, handle):
        return 350_000

    def nvmlDeviceGetClockInfo(self, handle, kind):
        return 1755


def test_power_readings_ride_on_the_rows(dev):
    from tokenfab.calibrate.power import PowerMeter
    layer, _cfg, name = tiny(dev, "qwen3-30b-a3b")
    meter = PowerMeter(nvml=ConstantPowerNVML(), interval_s=0.005)
    times, failed = run_grid(layer, LayerGrid((1,), (16,), (), 100), False, "bf16", meter, power_s=0.05)
    assert not failed and len(times) == 1
    row = layer_row(times[0], "cpu", name, name, "pytorch-x", "GQA + MoE")
    assert row["power_method"] == "power_samples" and row["avg_power_w"] == pytest.approx(350.0)
    assert row["joules_per_step"] == pytest.approx(350.0 * times[0].power.seconds / times[0].power.steps)
    assert row["sm_clock_mhz"] == 1755 and parse_query(row).metric == "layer_ms"


def test_a_failing_point_is_skipped_and_the_budget_stops_the_grid(dev, monkeypatch):
    from tokenfab.calibrate import moe_bench
    layer, _cfg, _name = tiny(dev, "qwen3-30b-a3b")
    real = moe_bench.time_point

    def flaky(layer, phase, b, n, *args):
        if b == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")
        return real(layer, phase, b, n, *args)
    monkeypatch.setattr(moe_bench, "time_point", flaky)
    times, failed = run_grid(layer, SMALL, False, "bf16")
    assert [(t.phase, t.batch) for t in times] == [("decode", 1), ("prefill", 1)]
    assert len(failed) == 1 and "decode batch 2" in failed[0] and "OutOfMemoryError" in failed[0]
    calls = iter([True, False])
    times, failed = run_grid(layer, SMALL, False, "bf16", keep_going=lambda: next(calls))
    assert len(times) == 1 and not failed


@pytest.mark.parametrize(("args", "needle"), [
    (["--hardware", "nosuch"], "--hardware"), (["--models", "nosuch-model"], "--models"),
    (["--models", "llama-3.1-8b"], "no routed experts"), (["--budget-s", "-5"], "--budget-s"),
    (["--power-s", "nan"], "--power-s"), (["--zipf-s", "-1"], "--zipf-s"), (["--models", ","], "--models"),
])
def test_script_refuses_bad_arguments_in_one_line_and_writes_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert load_script().main([str(out), "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err
    assert not out.exists()
