"""The design command's words for numbers that have none: a payback that never comes is said, not printed as inf."""

import math
import re

from tokenfab.cli_design import _payback_demand

INF = math.inf


def test_payback_demand_in_words():
    never = _payback_demand([INF, INF, INF])
    assert "never pays back" in never and "every draw" in never
    mostly = _payback_demand([2.0e10, INF, INF])
    assert "most draws" in mostly and "2e+10" in mostly
    some = _payback_demand([1.0e9, 3.0e9, INF])
    assert "from 3e+09 output tokens/day" in some and "to never" in some
    for text in (never, mostly, some, _payback_demand([1e9, 2e9, 4e9])):
        assert not re.search(r"\b(inf|nan)\b", text, re.IGNORECASE), text
