"""The chip search against exhaustive enumeration on a synthetic grid (the real one: benchmarks/)."""

import math

import numpy as np

from tokenfab.search.optimise import exhaustive, local_search, neighbours


def bowl(sizes, seed):
    rng = np.random.default_rng(seed)
    centre = [rng.uniform(0, n - 1) for n in sizes]
    w = rng.uniform(0.5, 2.0, len(sizes))

    def f(batch):
        return [float(sum(wi * (pi - ci) ** 2 for wi, pi, ci in zip(w, p, centre, strict=True))) + 1.0
                for p in batch]
    return f


def test_neighbours_stay_in_grid():
    assert sorted(neighbours((0, 2), (3, 3))) == [(0, 1), (1, 2)]


def test_local_search_finds_the_optimum_with_few_evaluations():
    sizes = (6, 3, 6, 3, 3, 3, 2)
    hits = 0
    for seed in range(10):
        f = bowl(sizes, seed)
        truth = min(exhaustive(sizes, f).values())
        seen = local_search(sizes, f, seed=seed)
        hits += min(seen.values()) <= truth * 1.01
        assert len(seen) < math.prod(sizes) / 10
    assert hits >= 9


def test_infeasible_points_do_not_stop_the_search():
    sizes = (5, 5)

    def f(batch):
        return [math.inf if p[0] < 3 else float(p[1]) for p in batch]
    seen = local_search(sizes, f, seed=0, starts=2)
    assert min(seen.values()) == 0.0


def test_same_seed_same_walk():
    sizes = (6, 3, 6, 3)
    f = bowl(sizes, 3)
    assert local_search(sizes, f, seed=5) == local_search(sizes, f, seed=5)


def test_pattern_moves_walk_a_slope_cheaper_and_no_point_is_evaluated_twice():
    sizes = (16, 3, 3, 3)
    calls: dict[bool, list] = {True: [], False: []}

    def make(pattern):
        def f(batch):
            calls[pattern].extend(batch)
            return [float(16 - p[0]) + 0.1 * sum(p[1:]) for p in batch]
        return f
    for pattern in (True, False):
        seen = local_search(sizes, make(pattern), seed=1, starts=1, pattern=pattern)
        assert min(seen.values()) == 1.0
        assert len(calls[pattern]) == len(set(calls[pattern]))
    assert len(calls[True]) < len(calls[False])
