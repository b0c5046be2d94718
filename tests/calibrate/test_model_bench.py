"""The random-weight Llama that step times are measured on computes a real transformer: a decode step
over a cache written by prefill gives the logits of prefilling one more token."""

import pytest

torch = pytest.importorskip("torch")

from tokenfab.calibrate.model_bench import (  # noqa: E402
    CPU_GRID,
    ModelBenchError,
    StepTime,
    TorchLlama,
    check_llama,
    step_row,
)
from tokenfab.calibrate.torchenv import open_device  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.queries import parse_query  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    dev = open_device("cpu", threads=1)
    return TorchLlama(dev, load_model("llama-tiny"), max_pos=64)


def test_decode_continues_prefill(tiny):
    with torch.inference_mode():
        ids = tiny.token_ids(2, 20)
        caches = tiny.kv_cache(2, 20)
        tiny.prefill(ids[:, :19], caches)
        decoded = tiny.decode(ids[:, 19:20], caches, 19).float()
        reference = tiny.prefill(ids).float()
    assert decoded.shape == (2, tiny.spec.vocab)
    assert torch.allclose(decoded, reference, atol=0.05 * reference.abs().max().item())
    # and the cache matters: random KV gives other logits
    with torch.inference_mode():
        other = tiny.decode(ids[:, 19:20], tiny.kv_cache(2, 20), 19).float()
    assert not torch.allclose(other, reference, atol=0.05 * reference.abs().max().item())


def test_inputs_are_never_zero(tiny):
    with torch.inference_mode():
        assert int(tiny.token_ids(4, 256).min()) >= 1
        k, v = tiny.kv_cache(1, 8)[0]
    assert bool((k != 0).any()) and bool((v != 0).any())
    assert all(bool((w != 0).all()) for w in tiny.layers[0][:1])  # norms near 1, never 0


def test_only_dense_llama_models_are_built():
    with pytest.raises(ModelBenchError, match="dense Llama"):
        check_llama(load_model("mixtral-8x7b"))


def test_step_rows_are_queries():
    rows = [step_row(StepTime("decode", 4, 128, 0.002, "eager"), "cpu", "llama-tiny", "pytorch-x"),
            step_row(StepTime("prefill", 2, 512, 0.03, "eager"), "cpu", "llama-tiny", "pytorch-x")]
    q = [parse_query(r) for r in rows]
    assert (q[0].scenario, q[0].metric, q[0].output_len, rows[0]["value"]) == ("static", "tpot_ms_mean", 2, 2.0)
    assert (q[1].scenario, q[1].metric, q[1].batch, rows[1]["value"]) == ("prefill", "ttft_ms_mean", 2, 30.0)
    assert all(b * n <= CPU_GRID.max_decode_tokens for b, n in CPU_GRID.decode_points())
