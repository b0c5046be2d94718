"""Backends: local processes and Ray give the same rows, in task order, as a plain in-process map."""

from __future__ import annotations

import pytest

from tokenfab.search.backends import BackendError, LocalBackend, make_backend
from tokenfab.search.problem import DesignProblem
from tokenfab.search.run import SearchOptions, design
from tokenfab.store import Store


def _square(x: int) -> int:
    return x * x


def test_local_backend_keeps_task_order():
    be = LocalBackend(jobs=2)
    try:
        assert list(be.map(_square, list(range(20)))) == [x * x for x in range(20)]
    finally:
        be.close()


def test_unknown_backend():
    with pytest.raises(BackendError):
        make_backend("spark")


def test_ray_backend_gives_the_local_answer(small_file, tmp_path):
    pytest.importorskip("ray")
    prob = DesignProblem.load(small_file)
    opts = SearchOptions(exhaustive=True, top_k=3, sim_requests=300, samples=50)
    local = design(prob, Store(tmp_path / "a.duckdb"), opts, jobs=1)
    remote = design(prob, Store(tmp_path / "b.duckdb"), opts, backend="ray", jobs=2)
    assert remote["custom"] == local["custom"] and remote["tiers"] == local["tiers"]
    ra, rb = Store(tmp_path / "a.duckdb").runs()[0], Store(tmp_path / "b.duckdb").runs()[0]
    assert Store(tmp_path / "a.duckdb").points(ra["id"]).equals(Store(tmp_path / "b.duckdb").points(rb["id"]))


def _running(pid: int) -> bool:
    from pathlib import Path
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text().lower()
    except OSError:
        return False


def test_workers_die_with_a_killed_parent(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, time\n"
        "from tokenfab.search.backends import LocalBackend\n"
        "b = LocalBackend(2)\n"
        "def pid(_):\n    return os.getpid()\n"
        "print(' '.join(map(str, sorted(set(b.map(pid, range(16)))))), flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers and proc.pid not in workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in workers if _running(p)]
    assert not alive


def test_a_ray_address_nobody_answers_is_one_line_at_once():
    import time

    from tokenfab.search.backends import BackendError, _reachable
    started = time.monotonic()
    with pytest.raises(BackendError, match="nothing answers"):
        _reachable("127.0.0.1:1")
    assert time.monotonic() - started < 15
