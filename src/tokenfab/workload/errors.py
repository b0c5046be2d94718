"""The traffic modules' one error type and the checks that raise it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class WorkloadError(ValueError):
    """Bad traffic input (file, preset, parameter or trace row); the message is one line naming the
    field and what is allowed."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise WorkloadError(message)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)
