"""The multi-vehicle covering tour problem (m-CTP): cheapest depot routes whose stops cover every customer.

Formulation. Visitable vertices 0..V-1 (0 is the depot) with symmetric edge costs c_ij, a set M of mandatory
vertices (depot included) and customers 0..C-1, where a_vk = 1 when vertex v covers customer k. Choose a set S of
visited vertices (M included) such that every customer k has some v in S with a_vk = 1, and route S from the depot
with any number of routes, each visiting at most p vertices (depot excluded) with length at most q. Minimise the
total length of the routes.

Algorithm. A large neighbourhood search on the visited set: a greedy cover (newly covered customers per unit of
insertion cost) with redundant vertices removed gives the first S; OR-Tools routing (one node count dimension
capped at p, a span limit q, guided local search for a short time) routes it. Each iteration estimates, from the
current routes, the cost change of dropping a redundant vertex, swapping a visited vertex for an unvisited one and
adding a vertex then dropping those it makes redundant (removal saving and cheapest feasible insertion), routes the
few most promising sets with OR-Tools and moves to the best if it improves; with no improving move it perturbs
the best set by random swaps. Routed sets are cached. The search stops early enough for the final, longer
routing of the best set to end within the time limit. There is no lower bound: ``bound`` is NaN and ``status`` is
``feasible``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from optimizer.errors import InfeasibleProblemError, InvalidCostError, InvalidProblemError, ShapeMismatchError
from optimizer.params import SolveParams
from optimizer.routing import RoutingProblem, solve_routing

Routes = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class CoveringTourProblem:
    """An m-CTP instance.

    Parameters
    ----------
    cost
        (V, V) symmetric non-negative edge costs between visitable vertices; vertex 0 is the depot.
    cover
        (V, C) booleans: ``cover[v, k]`` when visiting v covers customer k.
    mandatory
        Vertices that must be visited (the depot is always mandatory).
    max_visits
        p, the most vertices one route visits (depot excluded).
    max_length
        q, the longest route, in the units of ``cost``.
    """

    cost: np.ndarray
    cover: np.ndarray
    mandatory: tuple[int, ...]
    max_visits: int
    max_length: float

    def __post_init__(self) -> None:
        c = np.asarray(self.cost, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] != c.shape[1]:
            raise ShapeMismatchError(f"cost must be a square (V, V) matrix, got shape {c.shape}")
        if not np.isfinite(c).all() or (c < 0).any():
            raise InvalidCostError("cost must be finite and non-negative")
        a = np.asarray(self.cover)
        if a.ndim != 2 or a.shape[0] != c.shape[0]:
            raise ShapeMismatchError(f"cover must be (V, C) with V = {c.shape[0]}, got shape {a.shape}")
        if any(not 0 <= v < c.shape[0] for v in self.mandatory):
            raise InvalidProblemError(f"mandatory vertices must lie in 0..{c.shape[0] - 1}")
        if self.max_visits < 1:
            raise InvalidProblemError(f"max_visits (p) must be at least 1, not {self.max_visits}")
        uncovered = np.flatnonzero(~a.astype(bool).any(axis=0))
        if uncovered.size:
            raise InfeasibleProblemError(f"customers {uncovered[:10].tolist()} are covered by no vertex")
        far = [v for v in range(1, c.shape[0]) if c[0, v] + c[v, 0] > self.max_length + 1e-9]
        must = [v for v in far if v in self.mandatory]
        if must:
            raise InfeasibleProblemError(
                f"mandatory vertex {must[0]} is {c[0, must[0]]:g} from the depot; a route of length "
                f"{self.max_length:g} cannot reach it and return"
            )


@dataclass(frozen=True)
class CoveringTourResult:
    """Routes as vertex lists from and back to the depot (0 ... 0)."""

    status: Literal["feasible", "infeasible"]
    objective: float
    bound: float
    gap: float
    runtime_s: float
    routes: Routes
    visited: tuple[int, ...]
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"m-CTP: {self.status}, cost {self.objective:,.2f}, {len(self.routes)} route(s), "
            f"{len(self.visited)} vertices visited, {self.runtime_s:.2f} s"
        )


def route_length(cost: np.ndarray, route: tuple[int, ...] | list[int]) -> float:
    """Length of a closed route given as ``0, v1, ..., vk, 0``."""
    r = np.asarray(route, dtype=np.int64)
    return float(np.asarray(cost)[r[:-1], r[1:]].sum()) if len(r) > 1 else 0.0


class _Evaluator:
    """Routes vertex sets with OR-Tools and caches the results."""

    def __init__(self, problem: CoveringTourProblem, seed: int, slice_s: float) -> None:
        self.cost = np.asarray(problem.cost, dtype=np.float64)
        self.p = problem.max_visits
        self.q = problem.max_length
        self.seed = seed
        self.slice_s = slice_s
        self.cache: dict[frozenset[int], tuple[float, Routes] | None] = {}
        # costs become integers once: exact when they already are, else scaled to 1/1000 and rounded up (so a
        # route within q in integers is within q in floats)
        integral = bool(np.allclose(self.cost, np.rint(self.cost)))
        self.scale = 1.0 if integral else 1000.0
        scaled = self.cost * self.scale
        self.icost = np.rint(scaled).astype(np.int64) if integral else np.ceil(scaled - 1e-9).astype(np.int64)
        self.iq = math.floor(self.q * self.scale + 1e-9)
        self.calls = 0

    def route(self, visited: frozenset[int]) -> tuple[float, Routes] | None:
        if visited in self.cache:
            return self.cache[visited]
        nodes = [0, *sorted(visited - {0})]
        result: tuple[float, Routes] | None
        if len(nodes) == 1:
            result = (0.0, ())
        else:
            self.calls += 1
            k = len(nodes) - 1  # one route per vertex always suffices when each is reachable
            problem = RoutingProblem(
                travel=self.icost[np.ix_(nodes, nodes)], n_vehicles=k, max_span=self.iq, max_visits=self.p
            )
            routed = solve_routing(problem, params=SolveParams(time_limit_s=self.slice_s, seed=self.seed, workers=1))
            if not routed.routes:
                result = None
            else:
                routes = tuple(tuple(nodes[i] for i in r) for r in routed.routes if len(r) > 2)
                ok = all(len(r) - 2 <= self.p and route_length(self.cost, r) <= self.q + 1e-6 for r in routes)
                total = sum(route_length(self.cost, r) for r in routes)
                result = (total, routes) if ok else None
        self.cache[visited] = result
        return result


def _covered_by(cover: np.ndarray, visited: frozenset[int]) -> np.ndarray:
    idx = np.fromiter(visited, dtype=np.int64)
    return np.asarray(cover[idx].any(axis=0)) if idx.size else np.zeros(cover.shape[1], dtype=bool)


def _removal_saving(cost: np.ndarray, routes: list[list[int]], v: int) -> float:
    for r in routes:
        if v in r:
            i = r.index(v)
            return float(cost[r[i - 1], v] + cost[v, r[i + 1]] - cost[r[i - 1], r[i + 1]])
    return 0.0


def _insertion_cost(cost: np.ndarray, routes: list[list[int]], u: int, p: int, q: float) -> float:
    """Cheapest feasible insertion of ``u`` into the routes, or a new route 0-u-0."""
    best = float(cost[0, u] + cost[u, 0]) if cost[0, u] + cost[u, 0] <= q + 1e-9 else math.inf
    for r in routes:
        if len(r) - 2 >= p:
            continue
        length = route_length(cost, r)
        a, b = np.asarray(r[:-1]), np.asarray(r[1:])
        delta = cost[a, u] + cost[u, b] - cost[a, b]
        j = int(np.argmin(delta))
        if delta[j] < best and length + delta[j] <= q + 1e-9:
            best = float(delta[j])
    return best


def _without(routes: list[list[int]], v: int) -> list[list[int]]:
    return [[x for x in r if x != v] for r in routes]


def solve_covering_tour(problem: CoveringTourProblem, *, params: SolveParams | None = None) -> CoveringTourResult:
    """Find cheap depot routes that visit every mandatory vertex and cover every customer (see the module)."""
    params = params or SolveParams()
    t0 = time.perf_counter()
    deadline = t0 + params.time_limit_s
    cost = np.asarray(problem.cost, dtype=np.float64)
    cover = np.asarray(problem.cover).astype(bool)
    n = cost.shape[0]
    p, q = problem.max_visits, problem.max_length
    rng = np.random.default_rng(params.seed)
    mandatory = frozenset({0, *problem.mandatory})
    reachable = [v for v in range(n) if cost[0, v] + cost[v, 0] <= q + 1e-9 or v == 0]
    optional = [v for v in reachable if v not in mandatory]
    if not cover[reachable].any(axis=0).all():
        missing = np.flatnonzero(~cover[reachable].any(axis=0))
        raise InfeasibleProblemError(f"customers {missing[:10].tolist()} are covered only by unreachable vertices")
    slice_s = min(0.3, max(0.05, params.time_limit_s / 200))
    final_s = max(slice_s, min(2.0, 0.05 * params.time_limit_s))
    # the search stops early enough for one more routing and the final, longer routing to end within the limit
    deadline = t0 + params.time_limit_s - final_s - slice_s - 0.1
    evaluator = _Evaluator(problem, params.seed, slice_s)

    def redundant(visited: frozenset[int]) -> list[int]:
        counts = cover[np.fromiter(visited, dtype=np.int64)].sum(axis=0)
        return [v for v in visited if v not in mandatory and (counts[cover[v]] >= 2).all()]

    def prune(visited: frozenset[int], routes: list[list[int]]) -> frozenset[int]:
        """Drop redundant vertices, the largest saving first."""
        while True:
            cands = redundant(visited)
            if not cands:
                return visited
            v = max(cands, key=lambda x: (_removal_saving(cost, routes, x), -x))
            visited = visited - {v}
            routes = _without(routes, v)

    # greedy cover: newly covered customers per unit of insertion cost
    visited = mandatory
    routed = evaluator.route(visited)
    if routed is None:
        raise InfeasibleProblemError("the mandatory vertices cannot be routed within p and q")
    routes = [list(r) for r in routed[1]]
    while not _covered_by(cover, visited).all():
        have = _covered_by(cover, visited)
        best_u, best_key = -1, -math.inf
        for u in optional:
            if u in visited:
                continue
            newly = int((cover[u] & ~have).sum())
            if newly == 0:
                continue
            ins = _insertion_cost(cost, routes, u, p, q)
            key = newly / (ins + 1e-9) if math.isfinite(ins) else -math.inf
            if key > best_key:
                best_u, best_key = u, key
        if best_u < 0:
            raise InfeasibleProblemError("no vertex can be added to cover the remaining customers")
        visited = visited | {best_u}
        routes = _insert(cost, routes, best_u, p, q)  # keeps the insertion estimates of the next vertices honest
    visited = prune(visited, routes)
    current = evaluator.route(visited)
    if current is None:
        raise InfeasibleProblemError("the greedy cover could not be routed within p and q")
    best_set, best_val = visited, current
    cur_set, cur_val = visited, current
    iterations, stall = 0, 0

    while time.perf_counter() < deadline:
        iterations += 1
        routes = [list(r) for r in cur_val[1]]
        moves: list[tuple[float, frozenset[int]]] = []
        for v in redundant(cur_set):
            moves.append((-_removal_saving(cost, routes, v), cur_set - {v}))
        visited_opt = [v for v in cur_set if v not in mandatory]
        outside = [u for u in optional if u not in cur_set]
        for u in outside:
            ins = _insertion_cost(cost, routes, u, p, q)
            if math.isfinite(ins):
                added = cur_set | {u}
                after = [list(r) for r in routes]
                gain = 0.0
                while True:
                    cands = [x for x in redundant(added) if x != u]
                    if not cands:
                        break
                    x = max(cands, key=lambda y: (_removal_saving(cost, after, y), -y))
                    gain += _removal_saving(cost, after, x)
                    added = added - {x}
                    after = _without(after, x)
                if added != cur_set | {u}:
                    moves.append((ins - gain, added))
            for v in visited_opt:
                swapped = (cur_set - {v}) | {u}
                if not _covered_by(cover, swapped).all():
                    continue
                reduced = _without(routes, v)
                ins_v = _insertion_cost(cost, reduced, u, p, q)
                if math.isfinite(ins_v):
                    moves.append(
                        (ins_v - _removal_saving(cost, routes, v), prune(swapped, _insert(cost, reduced, u, p, q)))
                    )
        moves.sort(key=lambda m: (m[0], sorted(m[1])))
        improved = False
        tried = 0
        for _, cand in moves:
            if time.perf_counter() >= deadline or tried >= 4:
                break
            if cand in evaluator.cache and evaluator.cache[cand] is not None:
                val = evaluator.cache[cand]
            else:
                tried += 1
                val = evaluator.route(cand)
            if val is not None and val[0] < cur_val[0] - 1e-6:
                cur_set, cur_val, improved = cand, val, True
                break
        if improved:
            stall = 0
            if cur_val[0] < best_val[0] - 1e-6:
                best_set, best_val = cur_set, cur_val
            continue
        stall += 1
        # perturb the best set: a few random swaps that keep the cover, then prune
        cand = best_set
        for _ in range(int(rng.integers(1, 4))):
            inside = sorted(v for v in cand if v not in mandatory)
            out = [u for u in optional if u not in cand]
            if not out:
                break
            u = int(out[int(rng.integers(len(out)))])
            trial = cand | {u}
            if inside and rng.random() < 0.7:
                v = int(inside[int(rng.integers(len(inside)))])
                if _covered_by(cover, trial - {v}).all():
                    trial = trial - {v}
            cand = trial
        base = evaluator.route(cand)
        if base is not None:
            cand = prune(cand, [list(r) for r in base[1]])
            val = evaluator.route(cand)
            if val is not None:
                cur_set, cur_val = cand, val
                if val[0] < best_val[0] - 1e-6:
                    best_set, best_val = cand, val

    # a longer final routing of the best set
    final = _Evaluator(problem, params.seed, final_s).route(best_set)
    if final is not None and final[0] < best_val[0] - 1e-6:
        best_val = final
    return CoveringTourResult(
        status="feasible",
        objective=best_val[0],
        bound=math.nan,
        gap=math.nan,
        runtime_s=time.perf_counter() - t0,
        routes=best_val[1],
        visited=tuple(sorted(best_set)),
        stats={"iterations": float(iterations), "routings": float(evaluator.calls)},
    )


def _insert(cost: np.ndarray, routes: list[list[int]], u: int, p: int, q: float) -> list[list[int]]:
    """Routes with ``u`` at its cheapest feasible position (a new route if none fits)."""
    best, where = float(cost[0, u] + cost[u, 0]), (-1, -1)
    for k, r in enumerate(routes):
        if len(r) - 2 >= p:
            continue
        length = route_length(cost, r)
        for i in range(len(r) - 1):
            delta = float(cost[r[i], u] + cost[u, r[i + 1]] - cost[r[i], r[i + 1]])
            if delta < best and length + delta <= q + 1e-9:
                best, where = delta, (k, i + 1)
    out = [list(r) for r in routes]
    if where[0] < 0:
        out.append([0, u, 0])
    else:
        out[where[0]].insert(where[1], u)
    return out
