"""What a published row says about its deployment in its engine tag and note."""

from tokenfab.query_hints import read_hints


def test_pd_layout_from_engine_tag():
    h = read_hints("dynamo-sglang-0.5.8-pd-1xTP4+2xTP4", None)
    assert (h.pd.prefill_replicas, h.pd.prefill_width, h.pd.decode_replicas, h.pd.decode_width) == (1, 4, 2, 4)
    assert read_hints("sglang-0.5.2", None).pd is None


def test_phase_mtp_acceptance_and_overlap_from_notes():
    h = read_hints("sglang-2025-07", "Case study: MTP on: 3-token window, topk=1; average acceptance length 2.18; "
                   "decode-only test")
    assert h.phase == "decode" and h.mtp == 2 and h.accept == 2.18
    h = read_hints("sglang-pd-ep", "Prefill-only test on 4 nodes (DeepEP normal dispatch, two-batch overlap)")
    assert h.phase == "prefill" and h.overlap and h.mtp is None
    assert read_hints("trtllm-pytorch", "--tp 8 --ep 8 with enable_attention_dp (attention DP8), no MTP").attn_dp == 8
    assert read_hints("x", "no MTP").mtp == 0
    assert not read_hints("vllm-rocm", "EP16 decode; no dual-batch overlap yet").overlap
    assert read_hints("vllm", "Moreh vLLM, enforce-eager").eager


def test_fp8_attention_and_overlap_scheduler_from_notes():
    assert read_hints("sglang-0.5.2", "optimisations FP8 MLA, swapAB DeepGEMM").fp8_attention
    assert read_hints("sglang-0.5.2", "prefill instance = 1 node TP8 (fa3 attention, FP8 attention)").fp8_attention
    assert not read_hints("sglang-0.5.2", "BF16 attention").fp8_attention
    assert read_hints("sglang", "no overlap scheduling, no MTP (baseline)").host_overlap is False
    assert read_hints("sglang", "--disable-overlap-schedule").host_overlap is False
    assert read_hints("sglang", "overlap scheduling on, no MTP").host_overlap is True
    assert read_hints("sglang", "MTP steps=2").host_overlap is None


def test_token_budget_and_client_cap_from_notes():
    h = read_hints("mlperf-v5.1-trtllm", "TP8 x PP1, runtime max_batch_size 64, max_num_tokens 2560, FP8 KV")
    assert h.max_num_tokens == 2560 and h.client_cap is None
    h = read_hints("vllm", "--max-num-batched-tokens; max_num_batched_tokens=8,192; max concurrency 10,800")
    assert h.max_num_tokens == 8192 and h.client_cap == 10_800
    assert read_hints("vllm", "engine-chosen batch and max_num_tokens").max_num_tokens is None


def test_a_stated_token_budget_reaches_the_deployment():
    from tokenfab.hardware import load_chip
    from tokenfab.model import load_model
    from tokenfab.predict import query_deployment
    from tokenfab.queries import parse_query
    row = {"scenario": "static", "hardware": "h100-sxm", "model": "llama-3.1-8b", "input_len": 512,
           "output_len": 64, "batch": 8, "engine": "trtllm"}
    model, chip = load_model("llama-3.1-8b"), load_chip("h100-sxm")
    plain = query_deployment(parse_query(row), model, chip)
    stated = query_deployment(parse_query({**row, "note": "max_num_tokens 1024"}), model, chip)
    assert stated.token_budget == 1024 != plain.token_budget
