"""Default acceptance lengths come from the published rows, never from throughput."""

import pytest

from tokenfab.speculation import default_acceptance


def test_no_drafts_emit_one_token():
    assert default_acceptance("deepseek-r1", 0) == 1.0


def test_acceptance_grows_with_drafts_and_never_exceeds_them():
    values = [default_acceptance("deepseek-r1", d) for d in range(1, 6)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert all(1.0 < v <= d + 1 for d, v in zip(range(1, 6), values, strict=True))


def test_published_deepseek_mtp1_is_about_1_9():
    # TensorRT-LLM blog 1.92, DeepSeek-V3 report 1.85-1.90, Ant Group (SGLang draft=2, i.e. one draft) 1.8-1.9
    assert default_acceptance("deepseek-v3", 1) == pytest.approx(1.875, abs=0.03)
