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
