"""Parameter, KV and FLOP counts against hand calculations."""

import pytest

from tokenfab import catalog
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


# ----- large MoE zoo: counts against the published figures -----

# (zoo id, published total, published active, does the publisher count the embedding table as active?, model card)
# ModelSpec.active_params leaves the embedding lookup out (it is a row gather, not a GEMM). DeepSeek, Moonshot and
# OpenAI publish active counts the same way; Qwen and Meta count the table as activated too: Qwen3-30B-A3B's "3.3B"
# is 3.04B without it and 3.35B with it, Llama-4's "17B" 16.1B without and 17.2B with (Scout and Maverick alike).
PUBLISHED = [
    ("deepseek-v3", 671e9, 37e9, False, "https://huggingface.co/deepseek-ai/DeepSeek-V3"),
    ("deepseek-r1", 671e9, 37e9, False, "https://huggingface.co/deepseek-ai/DeepSeek-R1"),
    ("kimi-k2", 1.04e12, 32e9, False, "https://huggingface.co/moonshotai/Kimi-K2-Instruct"),
    ("qwen3-235b-a22b", 235e9, 22e9, True, "https://huggingface.co/Qwen/Qwen3-235B-A22B"),
    ("qwen3-30b-a3b", 30.5e9, 3.3e9, True, "https://huggingface.co/Qwen/Qwen3-30B-A3B"),
    ("qwen3-32b", 32.8e9, 32.8e9, True, "https://huggingface.co/Qwen/Qwen3-32B"),  # dense: all of it is active
    ("gpt-oss-120b", 117e9, 5.1e9, False, "https://huggingface.co/openai/gpt-oss-120b"),
    ("gpt-oss-20b", 21e9, 3.6e9, False, "https://huggingface.co/openai/gpt-oss-20b"),
    # Meta's totals include the ~0.9B vision encoder, which tokenfab (text model only) leaves out
    ("llama-4-maverick", 400e9, 17e9, True, "https://huggingface.co/meta-llama/Llama-4-Maverick-17B-128E-Instruct"),
    ("llama-4-scout", 109e9, 17e9, True, "https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct"),
]


@pytest.mark.parametrize(("model_id", "total", "active", "counts_embedding", "card"), PUBLISHED,
                         ids=[row[0] for row in PUBLISHED])
def test_counts_match_published(model_id, total, active, counts_embedding, card):
    m = load_model(model_id)
    assert m.total_params == pytest.approx(total, rel=0.03), card
    ours = m.active_params + (m.vocab * m.hidden if counts_embedding else 0)
    assert ours == pytest.approx(active, rel=0.03), card


@pytest.mark.parametrize(("model_id", "non_embedding"), [
    ("qwen3-235b-a22b", 234e9),   # https://huggingface.co/Qwen/Qwen3-235B-A22B: "Non-Embedding: 234B"
    ("qwen3-30b-a3b", 29.9e9),    # https://huggingface.co/Qwen/Qwen3-30B-A3B: "Non-Embedding: 29.9B"
    ("qwen3-32b", 31.2e9),        # https://huggingface.co/Qwen/Qwen3-32B: "Non-Embedding: 31.2B"
])
def test_qwen_non_embedding_counts(model_id, non_embedding):
    m = load_model(model_id)
    assert m.total_params - m.embedding_params == pytest.approx(non_embedding, rel=0.01)


# totals, active counts and layer groups of the zoo models that predate the large-MoE extension, pinned exactly
EXISTING = {
    "deepseek-r1": (671025397760, 36624596992, [(3, False, None), (58, True, None)]),
    "falcon-180b": (178552307712, 178552307712, [(80, False, None)]),
    "gpt-3-175b": (174563733504, 174563733504, [(96, False, None)]),
    "gpt-j-6b": (6050021376, 5843582976, [(28, False, None)]),
    "gpt-oss-120b": (116788838400, 5131100160, [(18, True, 128), (18, True, None)]),
    "llama-2-70b": (68975329280, 68713185280, [(80, False, None)]),
    "llama-2-7b": (6738149376, 6607077376, [(32, False, None)]),
    "llama-3.1-405b": (405849243648, 403747897344, [(126, False, None)]),
    "llama-3.1-70b": (70552387584, 69501714432, [(80, False, None)]),
    "llama-3.1-8b": (8029995008, 7504658432, [(32, False, None)]),
    "llama-3.3-70b": (70552387584, 69501714432, [(80, False, None)]),
    "llama-tiny": (2228224, 1703936, [(2, False, None)]),
    "mixtral-8x22b": (140619939840, 38954729472, [(56, True, None)]),
    "mixtral-8x7b": (46702526464, 12748587008, [(32, True, None)]),
    "qwen3-235b-a22b": (235092836352, 21567635456, [(94, True, None)]),
}


@pytest.mark.parametrize("model_id", sorted(EXISTING))
def test_existing_models_unchanged(model_id):
    m = load_model(model_id)
    total, active, groups = EXISTING[model_id]
    assert (m.total_params, m.active_params) == (total, active)
    assert [(g.count, g.moe, g.window) for g in m.layer_groups] == groups
    assert m.shared_expert_intermediate == 0


def test_llama4_maverick_layout_by_hand():
    m = load_model("llama-4-maverick")
    h, layers, vocab, experts, expert_w, dense_w = 5120, 48, 202048, 128, 8192, 16384
    assert (m.experts, m.top_k, m.shared_experts, m.shared_expert_width) == (experts, 1, 1, expert_w)
    assert (m.expert_intermediate, m.intermediate) == (expert_w, dense_w)
    # MoE on the odd layers (interleave_moe_layer_step 2); NoPE/global attention on layers 3, 7, .., 47,
    # all of them odd, so every dense layer is a chunked-attention layer
    kinds = {(g.moe, g.window): g.count for g in m.layer_groups}
    assert kinds == {(False, 8192): 24, (True, 8192): 12, (True, None): 12}
    assert sum(g.count for g in m.layer_groups) == layers
    attn = h * (40 * 128 + 2 * 8 * 128) + 40 * 128 * h
    moe = attn + (experts + 1) * 3 * h * expert_w + h * experts      # routed + shared expert + router
    dense = attn + 3 * h * dense_w
    assert m.total_params == 24 * moe + 24 * dense + 2 * vocab * h
    assert m.active_params == 24 * (attn + 2 * 3 * h * expert_w + h * experts) + 24 * dense + vocab * h
    # chunked layers stop growing with context past the chunk; only the 12 global layers keep going
    grow = m.flops_per_token(200_000) - m.flops_per_token(100_000)
    assert grow == pytest.approx(12 * m.attn_flops_per_pair() * 100_000)


def test_llama4_scout_layout():
    m = load_model("llama-4-scout")
    kinds = {(g.moe, g.window): g.count for g in m.layer_groups}
    assert kinds == {(True, 8192): 36, (True, None): 12}   # every layer MoE (step 1), 1 in 4 global
    assert (m.experts, m.top_k, m.shared_experts) == (16, 1, 1)
    # the explicit moe_layers / no_rope_layers lists say what the defaults derive from the step and interval
    cfg = catalog.model_config("llama-4-scout")
    text = {k: v for k, v in cfg["text_config"].items() if k not in ("moe_layers", "no_rope_layers")}
    derived = model_from_config({**cfg, "text_config": text})
    assert derived.layer_groups == m.layer_groups
    # without attention_chunk_size every layer attends globally
    text.pop("attention_chunk_size")
    assert {g.window for g in model_from_config({**cfg, "text_config": text}).layer_groups} == {None}


def test_gpt_oss_20b_like_120b():
    m = load_model("gpt-oss-20b")
    assert (m.layers, m.experts, m.top_k, m.shared_experts, m.head_dim) == (24, 32, 4, 0, 64)
    assert [(g.count, g.moe, g.window) for g in m.layer_groups] == [(12, True, 128), (12, True, None)]


def test_qwen3_moe_fields():
    m = load_model("qwen3-30b-a3b")
    assert (m.experts, m.top_k, m.expert_intermediate, m.shared_experts, m.head_dim) == (128, 8, 768, 0, 128)
    assert [(g.count, g.moe) for g in m.layer_groups] == [(48, True)]
    # decoder_sparse_step / mlp_only_layers (synthetic): layer i is MoE iff (i+1) % step == 0 and i not listed
    base = {"model_type": "qwen3_moe", "hidden_size": 64, "num_hidden_layers": 8, "num_attention_heads": 4,
            "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2,
            "vocab_size": 100}
    kinds = {g.moe: g.count for g in model_from_config({**base, "decoder_sparse_step": 2}).layer_groups}
    assert kinds == {False: 4, True: 4}
    kinds = {g.moe: g.count for g in model_from_config({**base, "decoder_sparse_step": 2,
                                                        "mlp_only_layers": [1]}).layer_groups}
    assert kinds == {False: 5, True: 3}


def test_mtp_module_is_separate_from_the_main_model():
    v3 = load_model("deepseek-v3")
    assert v3.mtp_layers == 1 and load_model("kimi-k2").mtp_layers == 0
    # DeepSeek-V3 (arXiv 2412.19437, section 2.2): one MoE decoder block + a 2h x h projection per module
    assert v3.mtp_params == v3.layer_params(moe=True) + 2 * v3.hidden * v3.hidden
    assert v3.mtp_params == pytest.approx(11.6e9, rel=0.01)
    # with the checkpoint's own embedding and head copies that is DeepSeek's "14B of MTP weights" (685B - 671B)
    assert v3.mtp_params + 2 * v3.vocab * v3.hidden == pytest.approx(14e9, rel=0.05)
    cfg = catalog.model_config("deepseek-v3")
    no_mtp = model_from_config({**cfg, "num_nextn_predict_layers": 0})
    assert (no_mtp.total_params, no_mtp.active_params) == (v3.total_params, v3.active_params)
    assert no_mtp.mtp_params == 0


def test_shared_expert_with_its_own_width():
    # Qwen2-MoE style (synthetic): one shared expert of shared_expert_intermediate_size
    base = {"model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 128, "moe_intermediate_size": 16, "num_experts": 8, "num_experts_per_tok": 2,
            "vocab_size": 100}
    wide = model_from_config({**base, "shared_expert_intermediate_size": 64})
    assert (wide.shared_experts, wide.shared_expert_width) == (1, 64)
    assert wide.shared_expert_params == 3 * 64 * 64
    # the same width as four DeepSeek-style shared experts of the expert width
    four = model_from_config({**base, "n_shared_experts": 4})
    assert (four.shared_experts, four.shared_expert_width) == (4, 16)
    assert four.total_params == wide.total_params and four.active_params == wide.active_params
    assert model_from_config(base).shared_experts == 0


def test_mla_prefill_runs_the_expanded_form():
    """DeepSeek-V3 decode attends in the 512+64 latent (absorbed), prefill in 192/128-wide heads: 3.4x fewer FLOPs
    per pair for prompt tokens; dense GQA models are the same in both phases."""
    ds = load_model("deepseek-v3")
    assert ds.attn_flops_per_pair() == 2 * 128 * (2 * 512 + 64)
    assert ds.attn_flops_per_pair_prefill() == 2 * 128 * (192 + 128)
    llama = load_model("llama-3.1-8b")
    assert llama.attn_flops_per_pair() == llama.attn_flops_per_pair_prefill()


def test_first_dense_layers_beyond_the_model_are_refused(tmp_path):
    import json

    from tokenfab.catalog import DATA
    cfg = json.loads((DATA / "models" / "deepseek-v3.json").read_text())
    for bad in (-5, 100, True):
        cfg["first_k_dense_replace"] = bad
        f = tmp_path / "c.json"
        f.write_text(json.dumps(cfg))
        with pytest.raises(ModelConfigError, match="first_k_dense_replace"):
            load_model(str(f))
