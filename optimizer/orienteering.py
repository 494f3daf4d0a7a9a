"""Single-vehicle orienteering: collect the most score on one budgeted path from a start to an end node.

Formulation. Nodes 0..N-1 with a travel matrix d_ij (any non-negative length, unrounded) and a score s_i >= 0.
Choose a path start = v_0, v_1, ..., v_k = end visiting each node at most once, with total length
sum_t d(v_t, v_t+1) <= B (the budget), maximising sum of s over the visited nodes. Start and end score nothing
extra (their scores are collected always and counted once, as in the Tsiligirides benchmark where they are 0).

Algorithm. Nodes that cannot be reached within the budget (d(start, i) + d(i, end) > B) are removed. OR-Tools
routing solves the prize-collecting version: the arc cost is the length scaled to integers and rounded *up*, the
span limit is the budget scaled and rounded *down* (so an integer-feasible path is feasible in exact floats), and
dropping node i costs s_i * (B_int + 1), which makes any gain in score worth more than any length. An iterated
local search in exact floats then polishes the path (2-opt, best insertion, swap of a visited node for a better
unvisited one, random removals and noisy ratio insertion as perturbation) until the time limit or 2000 iterations
without a better path. The result is checked against the budget in
floats. The bound is the total score of the reachable nodes (cheap and weak): a gap of 0 proves optimality,
otherwise the status is ``feasible``. Runs are deterministic for the same inputs, seed and time limit profile.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from optimizer.errors import InfeasibleProblemError, InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams
from optimizer.routing import RoutingProblem, solve_routing

_EPS = 1e-9
_STALL = 2000  # iterations without a better path before the search stops (before the time limit on small inputs)
_SCALE_TARGET = 1e6  # the budget in integer units: fine enough that rounding up lengths loses almost nothing


@dataclass(frozen=True)
class OrienteeringResult:
    """The best path found (node ids, start and end included) and its score and length."""

    status: Literal["optimal", "feasible"]
    objective: float
    bound: float
    gap: float
    runtime_s: float
    tour: tuple[int, ...]
    length: float
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"orienteering: {self.status}, score {self.objective:g} (bound {self.bound:g}), length "
            f"{self.length:.4f}, {len(self.tour) - 2} stops, {self.runtime_s:.2f} s"
        )


def path_length(travel: np.ndarray, tour: tuple[int, ...] | list[int]) -> float:
    """Length of a node sequence in exact floats."""
    t = np.asarray(tour, dtype=np.int64)
    return float(np.asarray(travel, dtype=np.float64)[t[:-1], t[1:]].sum()) if len(t) > 1 else 0.0


def _validate(travel: np.ndarray, score: np.ndarray, start: int, end: int, budget: float) -> None:
    if travel.ndim != 2 or travel.shape[0] != travel.shape[1]:
        raise ShapeMismatchError(f"travel must be a square (N, N) matrix, got shape {travel.shape}")
    n = travel.shape[0]
    if score.shape != (n,):
        raise ShapeMismatchError(f"score has shape {score.shape}; it needs one entry per node ({n})")
    if not np.isfinite(travel).all() or (travel < 0).any():
        raise InvalidCostError("travel must be finite and non-negative")
    if not np.isfinite(score).all() or (score < 0).any():
        raise InvalidCostError("score must be finite and non-negative")
    if not (0 <= start < n and 0 <= end < n):
        raise InvalidProblemError(f"start {start} and end {end} must be nodes in 0..{n - 1}")
    if not math.isfinite(budget) or budget < 0:
        raise InvalidCostError(f"budget must be finite and non-negative, not {budget!r}")
    if travel[start, end] > budget + _EPS:
        raise InfeasibleProblemError(
            f"the direct leg from start {start} to end {end} is {travel[start, end]:g}, over the budget {budget:g}"
        )


class _Search:
    """Exact-float local search on one path; ``d`` is a list of lists for fast scalar access."""

    def __init__(self, d: list[list[float]], score: list[float], budget: float, rng: np.random.Generator) -> None:
        self.d, self.score, self.budget, self.rng = d, score, budget, rng

    def length(self, tour: list[int]) -> float:
        d = self.d
        return sum(d[a][b] for a, b in itertools.pairwise(tour))

    def value(self, tour: list[int]) -> float:
        return sum(self.score[v] for v in tour[1:-1])

    def two_opt(self, tour: list[int]) -> list[int]:
        d, n = self.d, len(tour)
        improved = True
        while improved:
            improved = False
            for i in range(1, n - 2):
                a, b = tour[i - 1], tour[i]
                for j in range(i + 1, n - 1):
                    c, e = tour[j], tour[j + 1]
                    if d[a][c] + d[b][e] < d[a][b] + d[c][e] - 1e-10:
                        tour[i : j + 1] = tour[i : j + 1][::-1]
                        improved = True
                        b = tour[i]
        return tour

    def best_insertion(self, tour: list[int], u: int) -> tuple[float, int]:
        d = self.d
        best, pos = math.inf, -1
        for i in range(len(tour) - 1):
            a, b = tour[i], tour[i + 1]
            delta = d[a][u] + d[u][b] - d[a][b]
            if delta < best:
                best, pos = delta, i + 1
        return best, pos

    def insert_all(self, tour: list[int], free: list[int], noise: float = 0.0) -> list[int]:
        """Insert unvisited nodes while any fits.

        Without noise: highest score first, cheapest insertion on ties. With noise (perturbation): the best ratio of
        score to added length, each ratio scaled by a random factor in [1 - noise, 1].
        """
        length = self.length(tour)
        while True:
            inside = set(tour)
            best: tuple[float, float, int, int] | None = None
            for u in free:
                if u in inside or self.score[u] <= 0:
                    continue
                delta, pos = self.best_insertion(tour, u)
                if length + delta <= self.budget + _EPS:
                    first = -self.score[u]
                    if noise > 0:
                        first = -self.score[u] / (delta + 1e-6) * (1 - noise * float(self.rng.random()))
                    key = (first, delta, u, pos)
                    if best is None or key < best:
                        best = key
            if best is None:
                return tour
            tour.insert(best[3], best[2])
            tour = self.two_opt(tour)
            length = self.length(tour)

    def swap(self, tour: list[int], free: list[int]) -> bool:
        """Replace one visited node by a better-scoring unvisited one if the path stays within budget."""
        inside = set(tour)
        for k in range(1, len(tour) - 1):
            v = tour[k]
            reduced = tour[:k] + tour[k + 1 :]
            base = self.length(reduced)
            for u in free:
                if u in inside or self.score[u] <= self.score[v]:
                    continue
                delta, pos = self.best_insertion(reduced, u)
                if base + delta <= self.budget + _EPS:
                    reduced.insert(pos, u)
                    tour[:] = reduced
                    return True
        return False

    def improve(self, tour: list[int], free: list[int], noise: float = 0.0) -> list[int]:
        tour = self.two_opt(tour)
        if noise > 0:
            tour = self.insert_all(tour, free, noise)
        while True:
            tour = self.insert_all(tour, free)
            if not self.swap(tour, free):
                return self.two_opt(tour)
            tour = self.two_opt(tour)

    def perturb(self, tour: list[int]) -> list[int]:
        inner = len(tour) - 2
        if inner <= 0:
            return list(tour)
        k = int(self.rng.integers(1, max(2, min(inner, 2 + inner // 3) + 1)))
        if self.rng.random() < 0.5:
            i = int(self.rng.integers(1, inner - k + 2))  # a segment
            return tour[:i] + tour[i + k :]
        drop = set(self.rng.choice(np.arange(1, inner + 1), size=min(k, inner), replace=False).tolist())
        return [v for i, v in enumerate(tour) if i not in drop]


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(score, length): more score, then shorter."""
    return a[0] > b[0] + _EPS or (abs(a[0] - b[0]) <= _EPS and a[1] < b[1] - 1e-9)


def solve_orienteering(
    travel: np.ndarray,
    score: np.ndarray,
    start: int,
    end: int,
    budget: float,
    *,
    params: SolveParams | None = None,
) -> OrienteeringResult:
    """Find a start-to-end path of length at most ``budget`` that collects the most ``score``.

    Parameters
    ----------
    travel
        (N, N) non-negative lengths (unrounded; need not be symmetric).
    score
        (N,) non-negative score of each node.
    start, end
        First and last node of the path (may be equal for a closed tour).
    budget
        Longest allowed path, in the units of ``travel``.
    params
        Time limit (shared between OR-Tools and the local search) and seed.

    Raises
    ------
    InfeasibleProblemError
        When even the direct leg from start to end exceeds the budget.
    """
    params = params or SolveParams()
    t0 = time.perf_counter()
    d = np.asarray(travel, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    _validate(d, s, start, end, float(budget))
    endpoints = {start, end}
    reach = d[start, :] + d[:, end] <= budget + _EPS
    candidates = [i for i in range(d.shape[0]) if reach[i] and i not in endpoints and s[i] > 0]
    fixed = s[start] + (s[end] if end != start else 0.0)
    bound = fixed + float(s[candidates].sum())

    # OR-Tools on the reachable sub-matrix: index 0 = start, 1 = end (if distinct), then the candidates
    nodes = [start] if start == end else [start, end]
    nodes += candidates
    sub = d[np.ix_(nodes, nodes)]
    scale = _SCALE_TARGET / float(budget) if budget > 0 else 1.0
    cost = np.ceil(sub * scale - 1e-9).astype(np.int64)
    budget_int = math.floor(float(budget) * scale + 1e-9)
    weight = budget_int + 1
    prize = np.zeros(len(nodes), dtype=np.int64)
    prize[len(nodes) - len(candidates) :] = np.rint(s[candidates] * 1000).astype(np.int64) * weight
    end_index = 0 if start == end else 1
    tour: list[int] = [start, end]
    if candidates:
        problem = RoutingProblem(travel=cost, starts=(0,), ends=(end_index,), max_span=budget_int, prize=prize)
        share = SolveParams(time_limit_s=max(0.05, 0.4 * params.time_limit_s), seed=params.seed, workers=1)
        routed = solve_routing(problem, params=share)
        if routed.routes:
            tour = [nodes[i] for i in routed.routes[0]]
    ortools_s = time.perf_counter() - t0

    # exact-float polish and iterated local search
    search = _Search(d.tolist(), s.tolist(), float(budget), np.random.default_rng(params.seed))
    while len(tour) > 2 and search.length(tour) > budget + _EPS:
        # repair (rounding up cannot cause this, but a changed routing wrapper might): drop the lowest score
        k = min(range(1, len(tour) - 1), key=lambda i: s[tour[i]])
        del tour[k]
    tour = search.improve(tour, candidates)
    best = list(tour)
    best_key = (search.value(best), search.length(best))
    current, current_key = list(best), best_key
    iterations = last_gain = 0
    deadline = t0 + params.time_limit_s
    while time.perf_counter() < deadline and best_key[0] < bound - fixed - _EPS and iterations - last_gain < _STALL:
        iterations += 1
        trial = search.improve(search.perturb(current), candidates, noise=0.5 if iterations % 2 else 0.0)
        key = (search.value(trial), search.length(trial))
        if _better(key, best_key):
            best, best_key, last_gain = list(trial), key, iterations
        if key[0] >= current_key[0] - _EPS or search.rng.random() < 0.1:
            current, current_key = trial, key
        if iterations % 100 == 0:
            current, current_key = list(best), best_key  # restart from the best

    length = path_length(d, best)
    if length > budget + 1e-7:
        raise AssertionError(f"internal error: path length {length} exceeds the budget {budget}")
    objective = fixed + best_key[0]
    gap = (bound - objective) / bound if bound > 0 else 0.0
    return OrienteeringResult(
        status="optimal" if gap <= params.gap_tolerance else "feasible",
        objective=objective,
        bound=bound,
        gap=max(gap, 0.0),
        runtime_s=time.perf_counter() - t0,
        tour=tuple(best),
        length=length,
        stats={"ortools_s": ortools_s, "iterations": float(iterations), "candidates": float(len(candidates))},
    )
