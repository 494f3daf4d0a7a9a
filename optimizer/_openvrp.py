"""Open-path vehicle routing with a span limit: ruin-and-recreate search and exact short paths, in numpy.

Problem. Nodes 0..n-1 with travel t_ij (s) and dwell d_i (s); at most m routes, each an open path (it may start
and end at any node, with no depot legs) whose span, the dwell of its nodes plus the travel along it, is at most S.
Minimise the total travel. Every node is visited exactly once.

Algorithm. Slack induction by string removals (Christiaens & Vanden Berghe 2020, "SISR"): remove a few strings of
consecutive nodes near a random seed node, re-insert them greedily at their cheapest feasible position (with
"blinks" that skip positions at random), and accept the result by simulated annealing. Open paths make every
route end at a virtual node n that is free to leave and reach, so an insertion before the first or after the
last node costs one leg. Short routes are then re-ordered exactly (Held-Karp over subsets), longer ones by 2-opt.
The search is deterministic for a seed and an iteration budget; a time limit caps it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from optimizer.errors import InfeasibleProblemError

#: Routes up to this many nodes are re-ordered exactly.
EXACT_PATH_NODES = 12
#: Simulated annealing temperatures, as shares of the mean distance from a node to its five nearest ones.
START_TEMPERATURE = 0.5
END_TEMPERATURE = 0.005


def path_travel(travel: np.ndarray, route: Sequence[int] | np.ndarray) -> float:
    """Travel along an open path."""
    r = np.asarray(route, dtype=np.int64)
    return float(travel[r[:-1], r[1:]].sum()) if len(r) > 1 else 0.0


def best_open_path(travel: np.ndarray, nodes: Sequence[int]) -> list[int]:
    """The cheapest open path through ``nodes``: exact up to :data:`EXACT_PATH_NODES` nodes, else 2-opt/Or-opt.

    The path may start at any node; ties keep the given order, so an already optimal path is returned unchanged.
    """
    nodes = [int(v) for v in nodes]
    k = len(nodes)
    if k <= 2:
        return nodes
    if k > EXACT_PATH_NODES:
        return two_opt(travel, nodes)
    sub = travel[np.ix_(nodes, nodes)]
    full = 1 << k
    cost = np.full((full, k), np.inf)
    parent = np.full((full, k), -1, dtype=np.int64)
    for j in range(k):
        cost[1 << j, j] = 0.0
    popcount = np.array([bin(s).count("1") for s in range(full)])
    subsets = np.arange(full)
    for size in range(1, k):
        layer = subsets[popcount == size]
        # extend each path ending at i (over the layer's subsets) by a node j outside the subset
        total = cost[layer][:, :, None] + sub[None, :, :]
        arg = total.argmin(axis=1)
        val = np.take_along_axis(total, arg[:, None, :], axis=1)[:, 0, :]
        for j in range(k):
            free = (layer >> j) & 1 == 0
            target = layer[free] | (1 << j)
            better = val[free, j] < cost[target, j] - 1e-9
            cost[target[better], j] = val[free, j][better]
            parent[target[better], j] = arg[free, j][better]
    end = int(np.argmin(cost[full - 1]))
    if cost[full - 1, end] >= path_travel(travel, nodes) - 1e-9:
        return nodes
    order, subset = [], full - 1
    while end >= 0:
        order.append(nodes[end])
        prev = int(parent[subset, end])
        subset ^= 1 << end
        end = prev
    return order[::-1]


def two_opt(travel: np.ndarray, route: Sequence[int]) -> list[int]:
    """Improve an open path by 2-opt (segment reversal) and Or-opt (moving 1-3 nodes) until no move helps."""
    r = [int(v) for v in route]
    improved = True
    while improved:
        improved = False
        n = len(r)
        for i in range(n - 1):
            for j in range(i + 1, n):
                # reverse r[i..j]; legs (i-1, i) and (j, j+1) change, open ends cost nothing
                before = (travel[r[i - 1], r[i]] if i > 0 else 0.0) + (travel[r[j], r[j + 1]] if j < n - 1 else 0.0)
                after = (travel[r[i - 1], r[j]] if i > 0 else 0.0) + (travel[r[i], r[j + 1]] if j < n - 1 else 0.0)
                if after < before - 1e-9:
                    r[i : j + 1] = r[i : j + 1][::-1]
                    improved = True
        for length in (1, 2, 3):
            for i in range(len(r) - length + 1):
                seg = r[i : i + length]
                rest = r[:i] + r[i + length :]
                base = path_travel(travel, r)
                best, where = base, -1
                for p in range(len(rest) + 1):
                    cand = rest[:p] + seg + rest[p:]
                    c = path_travel(travel, cand)
                    if c < best - 1e-9:
                        best, where = c, p
                if where >= 0:
                    r = rest[:where] + seg + rest[where:]
                    improved = True
    return r


class _Solution:
    """Routes with their travel (``cost``) and dwell (``load``), each node's route, and an undo log."""

    __slots__ = ("cost", "load", "route_of", "routes", "undo")

    def __init__(self, routes: list[list[int]], n: int, ext: np.ndarray, dwell: np.ndarray) -> None:
        self.routes = routes
        self.cost = np.zeros(len(routes))
        self.load = np.zeros(len(routes))
        self.route_of = np.full(n, -1, dtype=np.int64)
        self.undo: dict[int, tuple[list[int], float, float]] = {}
        for i, r in enumerate(routes):
            self.refresh(i, ext, dwell)
            self.route_of[r] = i

    def touch(self, i: int) -> None:
        """Remember route ``i`` as it was before this iteration's first change to it."""
        if i not in self.undo:
            self.undo[i] = (list(self.routes[i]), float(self.cost[i]), float(self.load[i]))

    def rollback(self) -> None:
        for i, (r, c, w) in self.undo.items():
            self.routes[i] = r
            self.cost[i], self.load[i] = c, w
            self.route_of[r] = i
        self.undo = {}

    def refresh(self, i: int, ext: np.ndarray, dwell: np.ndarray) -> None:
        r = self.routes[i]
        if r:
            a = np.asarray(r, dtype=np.int64)
            self.cost[i] = float(ext[a[:-1], a[1:]].sum())
            self.load[i] = float(dwell[a].sum())
        else:
            self.cost[i] = self.load[i] = 0.0

    def snapshot(self) -> list[list[int]]:
        return [list(r) for r in self.routes]


def improve_routes(
    travel: np.ndarray,
    dwell: np.ndarray,
    span_limit: float,
    routes: Sequence[Sequence[int]],
    n_routes: int,
    *,
    iterations: int,
    time_limit_s: float,
    seed: int = 0,
    mean_removed: float = 10.0,
    max_string: int = 10,
    info: dict[str, float] | None = None,
) -> list[list[int]]:
    """Improve open routes by SISR ruin-and-recreate with simulated annealing; return the best routes found.

    ``routes`` must respect the span limit; nodes they miss are inserted first (cheapest feasible position). There
    are at most ``n_routes`` routes (empty ones are added). ``info`` receives the iterations run and whether the
    clock stopped the search (1.0) before the iteration budget did. The temperature falls geometrically from half
    to 1/200 of the mean distance to the five nearest nodes over the iterations (or over the time limit, if it ends
    first).

    Raises
    ------
    InfeasibleProblemError
        When a missing node fits in no route.
    """
    n = len(dwell)
    start_time = time.perf_counter()
    ext = np.zeros((n + 1, n + 1))
    ext[:n, :n] = travel
    ext_t = np.ascontiguousarray(ext.T)
    dwell = np.asarray(dwell, dtype=np.float64)
    given = [[int(v) for v in r] for r in routes if len(r)]
    sol = _Solution(given + [[] for _ in range(max(0, n_routes - len(given)))], n, ext, dwell)
    rng = np.random.default_rng(seed)
    missing = [v for v in range(n) if sol.route_of[v] < 0]
    if missing and not _recreate(sol, missing, rng, ext, ext_t, dwell, span_limit, blink=0.0):
        raise InfeasibleProblemError(
            f"{n} stops do not fit in {n_routes} route(s) within the span limit of {span_limit / 3600:.2f} h"
        )
    sol.undo = {}
    info = info if info is not None else {}
    info.update(iterations=0.0, stopped_by_clock=0.0)
    if n < 2:
        return [r for r in sol.routes if r]
    current = float(sol.cost.sum())
    best, best_cost = sol.snapshot(), current
    masked = travel + np.diag(np.full(n, np.inf))
    near = np.argsort(masked, axis=1)[:, : min(n - 1, 60)]
    scale = float(np.mean(np.sort(masked, axis=1)[:, : min(5, n - 1)])) or 1.0
    temp0, temp1 = START_TEMPERATURE * scale, END_TEMPERATURE * scale
    for it in range(iterations):
        elapsed = time.perf_counter() - start_time
        if elapsed > time_limit_s:
            info["stopped_by_clock"] = 1.0
            break
        info["iterations"] = it + 1.0
        progress = max(it / iterations, elapsed / time_limit_s)
        temp = temp0 * (temp1 / temp0) ** progress
        removed = _ruin(sol, near, rng, mean_removed, max_string, ext, dwell)
        if _recreate(sol, removed, rng, ext, ext_t, dwell, span_limit):
            total = float(sol.cost.sum())
            if total < current - temp * math.log(rng.random()):
                sol.undo = {}
                current = total
                if total < best_cost - 1e-9:
                    best, best_cost = sol.snapshot(), total
                continue
        sol.rollback()
    return [best_open_path(travel, r) for r in best if r]


def _ruin(
    sol: _Solution,
    near: np.ndarray,
    rng: np.random.Generator,
    mean_removed: float,
    max_string: int,
    ext: np.ndarray,
    dwell: np.ndarray,
) -> list[int]:
    """Remove strings of consecutive nodes from routes near a random seed node (SISR's string removal)."""
    n = len(sol.route_of)
    used = sum(1 for r in sol.routes if r)
    max_len = min(float(max_string), n / max(used, 1))
    max_strings = 4.0 * mean_removed / (1.0 + max_len) - 1.0
    n_strings = int(rng.uniform(1.0, max_strings + 1.0))
    seed = int(rng.integers(n))
    removed: list[int] = []
    for v in (seed, *near[seed].tolist()):
        if len(sol.undo) >= n_strings:
            break
        i = int(sol.route_of[v])
        if i < 0 or i in sol.undo:
            continue
        sol.touch(i)
        r = sol.routes[i]
        length = int(rng.uniform(1.0, min(len(r), max_len) + 1.0))
        pos = r.index(v)
        first = int(rng.integers(max(0, pos - length + 1), min(pos, len(r) - length) + 1))
        cut = r[first : first + length]
        removed += cut
        del r[first : first + length]
        sol.route_of[cut] = -1
        sol.refresh(i, ext, dwell)
    return removed


def _recreate(
    sol: _Solution,
    removed: list[int],
    rng: np.random.Generator,
    ext: np.ndarray,
    ext_t: np.ndarray,
    dwell: np.ndarray,
    span_limit: float,
    *,
    blink: float = 0.01,
) -> bool:
    """Insert the removed nodes one by one at their cheapest feasible position; False if one does not fit.

    Every insertion gap (a, b) of every route sits in flat arrays sorted by route, a route's gaps in path order,
    with the virtual node standing for the open ends; only one empty route is offered at a time.
    """
    u = rng.random()
    if u < 4 / 11:
        rng.shuffle(removed)
    elif u < 8 / 11:
        removed.sort(key=lambda v: -dwell[v])
    # else: keep the removal order (nearest the seed first)
    virtual = ext.shape[0] - 1
    empties = [i for i, r in enumerate(sol.routes) if not r]
    offered = empties.pop(0) if empties else -1
    flat: list[int] = []
    owner: list[int] = []
    for i, r in enumerate(sol.routes):
        if r or i == offered:
            flat.append(virtual)
            flat.extend(r)
            owner.extend([i] * (len(r) + 1))
    size = len(flat)
    capacity = size + len(removed) + len(empties) + 1
    ga = np.empty(capacity, dtype=np.int64)
    gb = np.empty(capacity, dtype=np.int64)
    gr = np.empty(capacity, dtype=np.int64)
    ga[:size] = flat
    gr[:size] = owner
    gb[: size - 1] = ga[1:size]
    gb[size - 1] = virtual
    gb[: size - 1][gr[1:size] != gr[: size - 1]] = virtual  # a route's last gap ends at the virtual node
    gc = np.empty(capacity)
    gc[:size] = ext[ga[:size], gb[:size]]
    span = sol.cost + sol.load
    for v in removed:
        a_, b_, r_ = ga[:size], gb[:size], gr[:size]
        delta = ext_t[v][a_] + ext[v][b_] - gc[:size]
        fits = span[r_] + delta + dwell[v] <= span_limit + 1e-6
        if not fits.any():
            return False
        if blink > 0:
            open_ = fits & (rng.random(size) > blink)
            if open_.any():
                fits = open_
        g = int(np.argmin(np.where(fits, delta, np.inf)))
        i, b = int(r_[g]), int(b_[g])
        sol.touch(i)
        was_empty = not sol.routes[i]
        pos = g - int(np.searchsorted(r_, i))
        sol.routes[i].insert(pos, v)
        sol.route_of[v] = i
        sol.cost[i] += float(delta[g])
        sol.load[i] += float(dwell[v])
        span[i] = sol.cost[i] + sol.load[i]
        # gap g = (a, b) becomes (a, v) and (v, b)
        a = int(a_[g])
        for arr in (ga, gb, gr, gc):
            arr[g + 2 : size + 1] = arr[g + 1 : size]
        gb[g], ga[g + 1], gb[g + 1], gr[g + 1] = v, v, b, i
        gc[g], gc[g + 1] = ext[a, v], ext[v, b]
        size += 1
        if was_empty and empties:
            nxt = empties.pop(0)
            at = int(np.searchsorted(gr[:size], nxt))
            for arr in (ga, gb, gr, gc):
                arr[at + 1 : size + 1] = arr[at:size]
            ga[at], gb[at], gr[at], gc[at] = virtual, virtual, nxt, 0.0
            size += 1
    return True
