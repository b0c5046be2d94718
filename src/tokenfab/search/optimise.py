"""The chip search: seeded multi-start local search over the discrete chip axes, and exhaustive enumeration.

Every chip is screened with all its deployments at once (the inner, vectorised search), so the outer
search only walks the chip grid. The landscape is smooth along each axis (more cores, more stacks: cost
and capacity move monotonically), so a few random starts followed by steepest descent over +-1 steps
of every axis find the grid's optimum while evaluating a small share of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

Point = tuple[int, ...]
Evaluate = Callable[[list[Point]], list[float]]


def neighbours(p: Point, sizes: Sequence[int]) -> list[Point]:
    """Points one step away along one axis."""
    out = []
    for a, n in enumerate(sizes):
        for step in (-1, 1):
            v = p[a] + step
            if 0 <= v < n:
                out.append(p[:a] + (v,) + p[a + 1:])
    return out


def local_search(sizes: Sequence[int], evaluate: Evaluate, seed: int = 0, starts: int = 4, beam: int = 1,
                 budget: int | None = None, tol: float = 1e-3, pattern: bool = True) -> dict[Point, float]:
    """Multi-start steepest descent; returns every point evaluated with its objective (lower is better).

    Each round evaluates, as one batch, the unvisited neighbours of the `beam` best points so far. When a
    round moves the best one step along one axis, `pattern` keeps stepping that way while it improves
    (cost and capacity move monotonically along an axis, so the optimum often sits several steps off and
    one evaluation a step beats a whole neighbourhood a step). It stops when every neighbour of the beam
    has been seen (a local optimum for all of them), when a round improves the best by less than `tol`
    (relative: a flat ridge of near-ties is not worth walking), or at `budget`. Points are memoised
    across starts and rounds: none is evaluated twice."""
    rng = np.random.default_rng(seed)
    total = math.prod(sizes)
    budget = min(budget or total, total)
    seen: dict[Point, float] = {}

    def run(batch: list[Point]) -> None:
        batch = [p for p in dict.fromkeys(batch) if p not in seen][: max(budget - len(seen), 0)]
        if batch:
            seen.update(zip(batch, evaluate(batch), strict=True))

    def best() -> Point:
        return min(seen, key=lambda p: (seen[p], p))

    run([tuple(int(rng.integers(n)) for n in sizes) for _ in range(starts)])
    while len(seen) < budget:
        ranked = sorted(seen, key=lambda p: (seen[p], p))
        frontier = [p for p in ranked[:beam] if math.isfinite(seen[p])] or ranked[:1]
        fresh = [q for p in frontier for q in neighbours(p, sizes) if q not in seen]
        if not fresh:
            if math.isfinite(seen[ranked[0]]):
                break
            # nothing feasible yet: try fresh random points
            fresh = [tuple(int(rng.integers(n)) for n in sizes) for _ in range(starts)]
            if all(q in seen for q in fresh):
                break
        before, origin = seen[ranked[0]], ranked[0]
        run(fresh)
        top = best()
        step = np.subtract(top, origin)
        while pattern and math.isfinite(before) and np.abs(step).sum() == 1 and len(seen) < budget:
            ahead = tuple(int(v) for v in np.add(top, step))
            if ahead in seen or not all(0 <= v < n for v, n in zip(ahead, sizes, strict=True)):
                break
            run([ahead])
            if seen[ahead] >= seen[top]:
                break
            top = ahead
        after = seen[best()]
        if math.isfinite(before) and after > before * (1.0 - tol):
            break
    return seen


def exhaustive(sizes: Sequence[int], evaluate: Evaluate, batch: int = 64) -> dict[Point, float]:
    """Every point of the grid (the reference the search is measured against)."""
    seen: dict[Point, float] = {}
    grid = list(itertools.product(*(range(n) for n in sizes)))
    for i in range(0, len(grid), batch):
        part = grid[i:i + batch]
        seen.update(zip(part, evaluate(part), strict=True))
    return seen
