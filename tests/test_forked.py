"""A call in a forked child: the same value as in the parent, its errors re-raised, stoppable."""

import os
import time

import pytest

from tokenfab import forked
from tokenfab.forked import Background


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_the_child_computes_what_the_parent_would():
    pid, value = Background(lambda: _pid_and_square(7)).result()
    assert value == 49 and pid != os.getpid()


def test_an_error_in_the_child_is_raised_in_the_parent():
    def boom() -> None:
        raise ValueError("field 'slo': nothing passes")
    with pytest.raises(ValueError, match="nothing passes"):
        Background(boom).result()


def test_cancel_stops_the_child():
    job = Background(lambda: time.sleep(60))
    start = time.perf_counter()
    job.cancel()
    assert time.perf_counter() - start < 5.0


def test_without_fork_the_call_runs_in_the_parent(monkeypatch):
    def no_fork(_method: str):
        raise ValueError("cannot find context for 'fork'")
    monkeypatch.setattr(forked.multiprocessing, "get_context", no_fork)
    pid, value = Background(lambda: _pid_and_square(3)).result()
    assert value == 9 and pid == os.getpid()


def test_a_block_left_by_an_error_stops_its_child():
    """A caller interrupted before it collects the answer (a time budget) must not leave a child behind, blocked
    on handing over a result larger than the pipe holds."""
    with pytest.raises(KeyError), Background(lambda: b"x" * 10_000_000) as job:
        proc = job._proc
        raise KeyError("interrupted")
    assert proc is None or not proc.is_alive()


def test_stop_all_stops_every_child_still_running():
    import multiprocessing as mp
    jobs = [Background(lambda: time.sleep(60)) for _ in range(2)]
    forked.stop_all()
    assert not mp.active_children() and all(job._proc is None for job in jobs)
