"""Parameter, KV and FLOP counts against hand calculations."""

import pytest

from tokenfab.model import ModelConfigError, load_model, model_from_config


def test_llama2_7b_by_hand():
    m = load_model("llama-2-7b")
    h, inter, layers, vocab = 4096, 11008, 32, 32000
    per_layer = 4 * h * h + 3 * h * inter           # q,k,v,o + gate/up/down (MHA)
    assert m.total_params == layers * per_layer + 2 * vocab * h
    assert m.total_params == pytest.approx(6.74e9, rel=0.002)
    # KV: 2 (K,V) x 32 heads x 128 dims x 2 bytes x 32 layers
    assert m.kv_bytes_per_token("bf16") == 2 * 32 * 128 * 2 * 32
    # one token at context 1000: 2 x (active params incl. LM head) + 4 x h x context x layers
    expected = 2 * (layers * per_layer + vocab * h) + 4 * h * 1000 * layers
    assert m.flops_per_token(1000) == pytest.approx(expected)


def test_mixtral_8x7b_by_hand():
    m = load_model("mixtral-8x7b")
    h, inter, layers, vocab, experts, k = 4096, 14336, 32, 32000, 8, 2
    attn = h * (32 * 128 + 2 * 8 * 128) + 32 * 128 * h   # GQA: 8 KV heads
    expert = 3 * h * inter
    router = h * experts
    assert m.total_params == layers * (attn + experts * expert + router) + 2 * vocab * h
    assert m.active_params == layers * (attn + k * expert + router) + vocab * h
    assert m.total_params == pytest.approx(46.7e9, rel=0.005)
    assert m.active_params == pytest.approx(12.9e9, rel=0.02)
    assert m.kv_bytes_per_token("fp8") == 2 * 8 * 128 * 1 * 32


def test_deepseek_mla_and_shared_experts():
    m = load_model("deepseek-r1")
    assert m.is_mla and m.is_moe and m.shared_experts == 1
    assert m.kv_bytes_per_token("bf16") == 61 * (512 + 64) * 2  # compressed latent + rope key
    assert m.total_params == pytest.approx(671e9, rel=0.01)
    assert m.active_params == pytest.approx(37e9, rel=0.03)


def test_sliding_window_layers_cap_attention():
    m = load_model("gpt-oss-120b")
    assert {g.window for g in m.layer_groups} == {128, None}
    full_only = m.flops_per_token(100_000) - m.flops_per_token(50_000)
    # only the 18 full-attention layers keep growing with context beyond the window
    assert full_only == pytest.approx(18 * m.attn_flops_per_pair() * 50_000)


def test_bad_configs_name_the_field():
    base = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 128, "vocab_size": 100}
    with pytest.raises(ModelConfigError, match="hidden_size"):
        model_from_config({k: v for k, v in base.items() if k != "hidden_size"})
    with pytest.raises(ModelConfigError, match="num_key_value_heads"):
        model_from_config({**base, "num_key_value_heads": 3})
    with pytest.raises(ModelConfigError, match="num_hidden_layers"):
        model_from_config({**base, "num_hidden_layers": -2})
