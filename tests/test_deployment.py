import pytest

from tokenfab.deployment import Deployment, DeploymentError, engine_family, kv_capacity_tokens
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.units import GiB


def test_engine_family_mapping():
    assert engine_family("mlperf-v4.1-trtllm") == "trtllm"
    assert engine_family("trtllm-0.6.1") == "trtllm-legacy"
    assert engine_family("mlperf-v5.1-vllm-0.9.0.2-rocm") == "vllm-v1"
    assert engine_family("mlperf-v4.1-vllm-0.4.3-rocm") == "vllm"
    assert engine_family("moreh-vllm-0.11.0rc2") == "vllm-v1"
    assert engine_family("vllm (recipe; version not stated)") == "vllm-v1"
    assert engine_family("dynamo-sglang-0.5.8-pd-1xTP4+2xTP4") == "sglang"
    assert engine_family("trtllm-pytorch (2025 DeepSeek-R1 guide)") == "trtllm-pytorch"
    assert engine_family("trtllm-1.1") == "trtllm-pytorch"
    assert engine_family("pytorch-2.11.0-cudagraph") == "trtllm"   # our own torch runs are not TensorRT-LLM
    assert engine_family(None) == "trtllm"


def test_kv_capacity_by_hand():
    m, c = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    dep = Deployment(weight_precision="fp8", act_precision="fp8", kv_precision="fp8")
    weights = (m.total_params - m.embedding_params) * 1.0 + m.embedding_params * 2.0
    free = (80 * GiB - weights - 3.0 * GiB) * 0.9      # TRT-LLM: 0.9 of free memory
    assert kv_capacity_tokens(m, c, dep) == pytest.approx(free / (32 * 2 * 8 * 128 * 1.0))


def test_kv_capacity_grows_with_tp_and_shrinks_with_precision():
    m, c = load_model("llama-3.1-70b"), load_chip("h100-sxm")
    base = Deployment(tp=2, weight_precision="fp8", act_precision="fp8", kv_precision="fp8")
    assert kv_capacity_tokens(m, c, base.with_(tp=4)) > 2 * kv_capacity_tokens(m, c, base)
    assert kv_capacity_tokens(m, c, base.with_(kv_precision="bf16")) < kv_capacity_tokens(m, c, base)


@pytest.mark.parametrize("change, field", [({"tp": 3}, "tp"), ({"pp": 0}, "pp"), ({"ep": 2}, "ep"),
                                           ({"kv_precision": "fp7"}, "kv_precision")])
def test_invalid_layouts_name_the_field(change, field):
    dep = Deployment(**change)
    with pytest.raises(DeploymentError, match=field):
        dep.check(load_model("llama-3.1-70b"), load_chip("h100-sxm"))


def test_chip_without_fp8_units_is_not_credited():
    a100, h100 = load_chip("a100-sxm"), load_chip("h100-sxm")
    assert a100.compute_precision("fp8") == "bf16"
    assert a100.peak("fp8") == a100.peak("bf16")
    assert h100.peak("fp8") == pytest.approx(2 * h100.peak("bf16"), rel=1e-3)
