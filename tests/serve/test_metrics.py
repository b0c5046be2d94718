import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab.serve.metrics import LogHistogram


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(1e-5, 1e3), min_size=1, max_size=400), st.sampled_from([50.0, 90.0, 99.0]))
def test_streaming_percentile_within_half_a_percent(values: list[float], p: float) -> None:
    hist = LogHistogram()
    for chunk in np.array_split(np.array(values), 3):
        hist.add(chunk)
    exact = np.percentile(values, p, method="lower")
    exact_hi = np.percentile(values, p, method="higher")
    got = hist.percentile(p)
    assert exact * 0.995 <= got <= exact_hi * 1.005
    assert abs(hist.mean - np.mean(values)) <= 1e-9 * max(1.0, abs(np.mean(values)))
