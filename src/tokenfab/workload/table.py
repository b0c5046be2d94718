"""`RequestTable`: the columnar requests (one row each) that the serving simulator consumes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np

_FLOAT_COLS = ("arrival", "think_s")


@dataclass(frozen=True)
class RequestTable:
    """Columnar requests, one row each (int64 / float64 NumPy arrays of equal length).

    arrival: seconds; NaN where the simulator issues the request (follow-up turns, closed-loop
      sessions beyond the first `concurrency`).
    input_len: prompt tokens including the shared prefix and the session history.
    output_len: tokens to generate (>= 1).
    class_id: index into `Workload.classes` (0 for traces).
    session, turn: session id and 0-based turn; a session's rows are consecutive in turn order.
    think_s: wait after the previous turn finishes before this one arrives (0 for turn 0).
    prefix_group, prefix_len: the prompt starts with the first `prefix_len` tokens of this reusable
      token stream (-1, 0 = none).
    cache_group: stream this request's whole context (input + output) becomes once it finishes, for a
      later request to reuse (-1 = none).
    """

    arrival: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    class_id: np.ndarray
    session: np.ndarray
    turn: np.ndarray
    think_s: np.ndarray
    prefix_group: np.ndarray
    prefix_len: np.ndarray
    cache_group: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    def __getitem__(self, index: slice | np.ndarray) -> RequestTable:
        return RequestTable(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def single_turn(arrival: np.ndarray, input_len: np.ndarray, output_len: np.ndarray) -> RequestTable:
        """Independent requests of one class, no prefixes (each row its own session)."""
        n = len(arrival)
        zeros = np.zeros(n, dtype=np.int64)
        return RequestTable(np.asarray(arrival, dtype=np.float64), np.asarray(input_len, dtype=np.int64),
                            np.asarray(output_len, dtype=np.int64), zeros, np.arange(n, dtype=np.int64), zeros,
                            np.zeros(n), zeros - 1, zeros, zeros - 1)

    @staticmethod
    def empty() -> RequestTable:
        return RequestTable(**{f.name: np.empty(0, np.float64 if f.name in _FLOAT_COLS else np.int64)
                               for f in fields(RequestTable)})

    @staticmethod
    def concat(parts: Iterable[RequestTable]) -> RequestTable:
        parts = list(parts)
        if not parts:
            return RequestTable.empty()
        return RequestTable(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                               for f in fields(RequestTable)})

    def equals(self, other: RequestTable) -> bool:
        """Bit-for-bit equality (NaN equal to NaN)."""
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name),
                                  equal_nan=f.name in _FLOAT_COLS) for f in fields(self))
