"""Depot tours on small stop sets: exact costs of every subset (Held-Karp) and lower bounds for large sets.

A *tour* leaves the depot (node 0), visits a set of stops (nodes 1..m) once each and returns. It has a cost (any
non-negative arc cost, for example money per arc) and a duration (arc times plus the service time of its stops),
and is *feasible* when its duration is at most a limit (a working shift). :func:`subset_tours` gives the cheapest
feasible tour of **every** subset of the stops at once, which makes exact set partitioning over route-days a
small MIP (see :func:`optimizer.bookmobile.plan_timetable_exact`).

Lower bounds for stop sets too large to enumerate (:func:`tours_lower_bound`) rest on two facts about any set of
depot tours covering the stops: each stop has one arc in and one arc out, so the cost is at least half the sum of
every stop's (and each tour's depot's) cheapest arc in and cheapest arc out; and removing one depot arc from each
tour leaves a tree spanning the stops and the depot, so the cost is at least a minimum spanning tree on the
symmetrised costs plus one depot arc per tour.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree

#: Largest stop set :func:`subset_tours` enumerates (2^m subsets x m last stops).
MAX_EXACT_STOPS = 12


def subset_tours(
    cost: np.ndarray, time: np.ndarray, service: np.ndarray, limit: float
) -> tuple[np.ndarray, list[tuple[int, ...] | None]]:
    """Cheapest feasible depot tour of every subset of the stops.

    Parameters
    ----------
    cost, time
        (m + 1, m + 1) arc costs and arc times; node 0 is the depot.
    service
        (m,) service time at each stop.
    limit
        Largest tour duration (arc times plus service).

    Returns
    -------
    best, order
        ``best[mask]`` is the least cost of a feasible tour through exactly the stops in ``mask`` (bit ``i`` is
        stop ``i + 1``), ``inf`` when no order is feasible; ``order[mask]`` its stops in visiting order (1-based
        nodes), or ``None``.

    Notes
    -----
    Held-Karp on the cost gives each subset's cheapest tour; when that tour is too long, Held-Karp on the time
    decides whether any order fits, and only then a label-setting search over (cost, time) pairs finds the
    cheapest order that fits. Every answer is exact.
    """
    c = np.asarray(cost, dtype=np.float64)
    t = np.asarray(time, dtype=np.float64)
    m = c.shape[0] - 1
    if m > MAX_EXACT_STOPS:
        raise ValueError(f"subset_tours enumerates at most {MAX_EXACT_STOPS} stops, got {m}")
    full = 1 << m
    svc = np.asarray(service, dtype=np.float64)
    dwell = np.zeros(full)
    for i in range(m):
        dwell[(np.arange(full) & (1 << i)) != 0] += svc[i]
    c_cost, c_time, parent = _held_karp(c, t)
    _, min_time, _ = _held_karp(t, t)
    best = np.full(full, np.inf)
    order: list[tuple[int, ...] | None] = [None] * full
    best[0] = 0.0
    order[0] = ()
    for mask in range(1, full):
        close_cost = c_cost[mask] + c[1:, 0]
        last = int(np.argmin(close_cost))
        duration = c_time[mask, last] + t[last + 1, 0] + dwell[mask]
        if duration <= limit + 1e-9:
            best[mask] = close_cost[last]
            order[mask] = _walk_back(parent, mask, last)
            continue
        if float(np.min(min_time[mask] + t[1:, 0])) + dwell[mask] > limit + 1e-9:
            continue  # no order fits the limit
        found = _labels(c, t, mask, limit - dwell[mask])
        if found is not None:
            best[mask], order[mask] = found
    return best, order


def _held_karp(c: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least ``c`` of a depot path through exactly ``mask`` ending at each stop; the ``t`` of that path; parents."""
    m = c.shape[0] - 1
    full = 1 << m
    dp = np.full((full, m), np.inf)
    tp = np.full((full, m), np.inf)
    parent = np.full((full, m), -1, dtype=np.int64)
    masks = np.arange(full)
    popcount = np.zeros(full, dtype=np.int64)
    for i in range(m):
        popcount += (masks >> i) & 1
    for j in range(m):
        dp[1 << j, j] = c[0, j + 1]
        tp[1 << j, j] = t[0, j + 1]
    inner_c = c[1:, 1:]
    inner_t = t[1:, 1:]
    for size in range(2, m + 1):
        layer = masks[popcount == size]
        for j in range(m):
            sel = layer[((layer >> j) & 1) == 1]
            if not len(sel):
                continue
            prev = sel ^ (1 << j)
            cand = dp[prev] + inner_c[:, j][None, :]
            arg = np.argmin(cand, axis=1)
            dp[sel, j] = cand[np.arange(len(sel)), arg]
            tp[sel, j] = tp[prev, arg] + inner_t[arg, j]
            parent[sel, j] = arg
    return dp, tp, parent


def _walk_back(parent: np.ndarray, mask: int, last: int) -> tuple[int, ...]:
    out = []
    while last >= 0:
        out.append(last + 1)
        prev = int(parent[mask, last])
        mask ^= 1 << last
        last = prev
    return tuple(reversed(out))


def _labels(c: np.ndarray, t: np.ndarray, mask: int, budget: float) -> tuple[float, tuple[int, ...]] | None:
    """Cheapest order of the stops in ``mask`` whose arc time is at most ``budget`` (Pareto labels over paths)."""
    stops = [i for i in range(c.shape[0] - 1) if mask >> i & 1]
    # labels[(sub, j)] = list of (cost, time, path) not dominated
    labels: dict[tuple[int, int], list[tuple[float, float, tuple[int, ...]]]] = {}
    for j in stops:
        labels[(1 << j, j)] = [(float(c[0, j + 1]), float(t[0, j + 1]), (j + 1,))]
    for size in range(1, len(stops)):
        for (sub, j), items in [kv for kv in labels.items() if bin(kv[0][0]).count("1") == size]:
            for k in stops:
                if sub >> k & 1:
                    continue
                key = (sub | 1 << k, k)
                bucket = labels.setdefault(key, [])
                for cc, tt, path in items:
                    nc, nt = cc + float(c[j + 1, k + 1]), tt + float(t[j + 1, k + 1])
                    if nt > budget + 1e-9 or any(oc <= nc and ot <= nt for oc, ot, _ in bucket):
                        continue
                    bucket[:] = [b for b in bucket if not (nc <= b[0] and nt <= b[1])]
                    bucket.append((nc, nt, (*path, k + 1)))
    best: tuple[float, tuple[int, ...]] | None = None
    for j in stops:
        for cc, tt, path in labels.get((mask, j), []):
            if tt + float(t[j + 1, 0]) <= budget + 1e-9:
                total = cc + float(c[j + 1, 0])
                if best is None or total < best[0]:
                    best = (total, path)
    return best


def tours_lower_bound(cost: np.ndarray, time: np.ndarray, service: np.ndarray, limit: float) -> tuple[float, int]:
    """A lower bound on the cost of depot tours covering every stop, each within ``limit``, and on their number.

    Parameters as in :func:`subset_tours` (any number of stops). Returns ``(cost_bound, tours_bound)``: the most of
    the in-and-out bound and the spanning-tree bound (module docstring), and the fewest tours the durations allow
    (each stop's service plus half its cheapest arcs in and out of time, per tour half the depot's).
    """
    c = np.asarray(cost, dtype=np.float64)
    t = np.asarray(time, dtype=np.float64)
    m = c.shape[0] - 1
    if m == 0:
        return 0.0, 0
    half_c = _half_in_out(c)
    half_t = _half_in_out(t)
    work = float(np.asarray(service, dtype=np.float64).sum() + half_t[1:].sum())
    per_tour = max(limit - half_t[0], 1e-9)
    tours = max(1, math.ceil(work / per_tour - 1e-9))
    in_out = float(half_c[1:].sum() + tours * half_c[0])
    sym = np.minimum(c, c.T)
    np.fill_diagonal(sym, 0.0)
    # csgraph treats 0 as "no edge": lift every edge by a constant and take it off again
    lift = 1.0 + float(sym.max(initial=0.0))
    tree = minimum_spanning_tree(sym + lift - np.eye(m + 1) * lift)
    span = float(tree.sum()) - m * lift
    depot_arc = float(np.min(sym[0, 1:]))
    return max(in_out, span + tours * depot_arc, forest_bound(c, tours)), tours


def forest_bound(cost: np.ndarray, tours: int, iterations: int = 60) -> float:
    """Held-Karp-style Lagrangian bound on depot tours covering every stop, with at least ``tours`` tours.

    Without the depot, t tours are t paths covering the stops: a spanning forest of t trees, at least the minimum
    spanning forest on the symmetrised costs (Kruskal stopped at t components); their 2t ends join the depot by
    at least the 2t cheapest depot arcs (each stop at most twice). Every stop has degree 2 in the tours, so
    penalties ``pi`` on the degrees leave the bound valid for any ``pi`` (minus ``2 sum pi``); subgradient steps
    raise it. The bound takes the least over every tour count from ``tours`` to one per stop.
    """
    c = np.asarray(cost, dtype=np.float64)
    m = c.shape[0] - 1
    if m == 0:
        return 0.0
    sym = np.minimum(c, c.T)
    pi = np.zeros(m)
    best = -np.inf
    step = 0.1 * float(np.mean(sym[0, 1:])) if m else 0.0
    iu, ju = np.triu_indices(m, 1)
    for _ in range(iterations):
        inner = sym[1:, 1:] + pi[:, None] + pi[None, :]
        w = inner[iu, ju]
        order = np.argsort(w, kind="stable")
        parent = list(range(m))
        deg = np.zeros(m)
        taken: list[float] = []  # MST edge weights in Kruskal order, with their ends
        ends: list[tuple[int, int]] = []
        for e in order.tolist():
            a, b = _find(parent, int(iu[e])), _find(parent, int(ju[e]))
            if a != b:
                parent[a] = b
                taken.append(float(w[e]))
                ends.append((int(iu[e]), int(ju[e])))
                if len(taken) == m - 1:
                    break
        depot = sym[0, 1:] + pi
        twice = np.sort(np.concatenate([depot, depot]))
        # t trees: drop the t - 1 heaviest MST edges (the forest is the first m - t edges in Kruskal order)
        prefix = np.concatenate([[0.0], np.cumsum(taken)])
        dsum = np.concatenate([[0.0], np.cumsum(twice)])
        values = [prefix[m - t] + dsum[2 * t] for t in range(max(tours, 1), m + 1)]
        t_best = max(tours, 1) + int(np.argmin(values))
        value = float(min(values)) - 2.0 * float(pi.sum())
        best = max(best, value)
        for a, b in ends[: m - t_best]:
            deg[a] += 1
            deg[b] += 1
        # depot edges: the 2t cheapest, each stop at most twice
        pick = np.argsort(np.concatenate([depot, depot]), kind="stable")[: 2 * t_best]
        for idx in pick.tolist():
            deg[idx % m] += 1
        grad = deg - 2.0
        if not grad.any():
            break
        pi = pi + step * grad
        step *= 0.95
    return float(best)


def _find(parent: list[int], a: int) -> int:
    """Union-find root of ``a`` (with path halving)."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _half_in_out(c: np.ndarray) -> np.ndarray:
    """Per node, half of (cheapest arc in + cheapest arc out)."""
    off = np.where(np.eye(c.shape[0], dtype=bool), np.inf, c)
    if c.shape[0] == 1:
        return np.zeros(1)
    return np.asarray(0.5 * (off.min(axis=0) + off.min(axis=1)))


def cost_shares(best: np.ndarray, m: int) -> np.ndarray:
    """Per-stop shares ``a`` as large in total as they can be with ``sum_{i in T} a_i <= best[T]`` for every
    subset T that one tour can serve (``best`` from :func:`subset_tours`; an LP over those subsets).

    Any split of a set S into feasible tours then costs at least ``sum_{i in S} a_i`` (add the rows of its tours),
    so the shares are a linear function that never exceeds any subset's optimal routing cost.
    """
    from scipy.optimize import linprog

    masks = np.arange(1, 1 << m)
    ok = np.isfinite(best[masks])
    rows = ((masks[ok][:, None] >> np.arange(m)[None, :]) & 1).astype(float)
    res = linprog(-np.ones(m), A_ub=rows, b_ub=best[masks][ok], bounds=[(None, None)] * m, method="highs")
    if res.status != 0 or res.x is None:
        return np.zeros(m)
    return np.asarray(res.x)
