"""The selection MIP of the joint planner, as a relaxation that bounds every routed plan or as an estimate.

Demand points with the same reach pattern form *classes* c (population ``P[y, c, g]`` per year y and age group
g). With branches i and their hours levels h, candidate stops j and intervals k (weeks), desks d, vehicles v:

Variables
---------
- ``x[i, h]`` binary: branch i open at level h (``sum_h x[i, h] <= 1``; ``= 1`` when forced open; none when
  forced closed);
- ``z[j, k]`` binary: stop j served every k weeks (``sum_k z[j, k] <= 1``; one stop per community; no stop while
  a branch it conflicts with, the two-mile rule, is open);
- ``o[d]`` binary: desk d open; ``w[v]`` binary, ``sum_v w[v] = 1``: the fleet has v vehicles;
- ``u[c]`` binary: a branch within the home-delivery threshold is open for class c (its eligible seniors get no
  delivery): ``u[c] <= sum of x over those branches``, ``u[c] >= each of them``;
- ``m[c]``, ``e[c]`` in [0, 1]: class c (its eligible seniors) meets the standard: ``m[c] <= sum of the x, z (at
  most the standard's interval) and counting desks that reach c``, ``e[c] <= that sum + 1 - u[c]``;
- credit assignment ``a[c, option] <= option's variable``, ``sum a <= 1`` (``max_coverage``, and a credit floor);
- ``T``: the worst optimised year's cost (``min_cost``) or credit share (``max_coverage``).

Cost of year y: branch running costs of the chosen levels, one-off closure costs (annualised) of the closed,
desks, ``vehicle_annual * sum_v v w[v]``, home delivery ``cost * eligible[y, c] * (1 - u[c])``, and the
bookmobile's operating cost: its dwell hours ``per_hour * dwell_j / 3600 * 52 / k`` plus driving.

Driving differs between the two modes.

*bound*: a relaxation of the routed problem, so its optimum (and HiGHS's dual bound) bounds every plan the
routing can realise. With arc costs ``c_ab = per_hour * t_ab / 3600 + per_km * d_ab / 1000`` and
``l_j = (min_a c_aj + min_b c_jb) / 2`` (``tau_j`` likewise in time), any set of route-days pays at least
``l_j`` per visit of stop j and ``l_0`` per route-day. Integer route-day counts ``n[k]`` and an annual driving
cost ``eta``:

    eta >= sum_jk (52 / k) l_j z[j, k] + sum_k (52 / k) l_0 n[k]
    (shift - lunch - tau_0) n[k] >= sum_j (dwell_j + tau_j) z[j, k],   n[k] >= z[j, k]
    sum_{k != 3} n[k] / k + q3 <= |weekdays| sum_v v w[v],   3 q3 >= n[3]     (route-days fit the wheels)

and ``z[j, .] = 0`` where even the cheapest arcs in and out of j with its dwell exceed a shift. Routing cuts
tighten it (logic-based Benders): when the stop set S (pairs j, k) with v vehicles costs R to route, optimally,
any plan serving a superset of S with at most v vehicles costs at least R (dropping stops never makes routes
dearer, more vehicles never make them dearer), so

    eta >= R (1 - sum_{(j,k) in S} (1 - z[j, k]) - sum_{v' > v} w[v'])

and a set that cannot be routed at all excludes its supersets likewise. R must be a lower bound on the set's
optimal routing cost: the exact cost when the set was routed exactly, else a bound on it.

*estimate*: the heuristic's model. A visit costs its dwell plus ``alpha`` times the mean travel to its two
nearest neighbours (hours and km), all times ``beta``; the weekly workload ``sum (dwell + alpha leg) / k`` must
fit ``|weekdays| * usable`` hours per vehicle (usable: the shift minus lunch and an estimated depot overhead).
The search re-calibrates ``alpha`` and ``beta`` from each routed plan.

Objectives: ``min_cost`` minimises T >= cost[y] (every optimised year) subject to the standards; ``max_coverage``
maximises T <= credit[y] / need[y] subject to the standards and cost[y] <= budget. A tiny secondary term
prefers, in the estimate mode only, the cheaper plan among equal coverage and the better covered among equal
cost; the bound mode keeps the pure objective, so :meth:`SelectionModel.bound_of` turns HiGHS's dual bound
directly into a bound on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from optimizer._mip import SparseMilp
from optimizer.errors import InfeasibleProblemError
from optimizer.planner.evaluate import access, covered_people
from optimizer.planner.problem import WEEKS_PER_YEAR, PlanDecision, PlannerProblem, today

Mode = Literal["bound", "estimate"]
TIE = 1e-6  # weight of the secondary objective
DEPTH = 5  # candidate neighbours per stop in the driving bound


@dataclass
class Classes:
    """Demand points aggregated by reach pattern."""

    of_point: np.ndarray  # (N,) class of each point
    pop: np.ndarray  # (Y, C, G)
    zone: np.ndarray  # (C,)
    reach_b: np.ndarray  # (C, B) branch within the drive standard
    reach_hd: np.ndarray  # (C, B) branch within the home-delivery threshold
    reach_s: np.ndarray  # (C, S) stop within the walk standard
    reach_d: np.ndarray  # (C, D)
    must: np.ndarray | None = None  # (C,) residents who must meet the standard (``PlannerProblem.must_meet``)


def classes_of(problem: PlannerProblem) -> Classes:
    """Aggregate the demand points of ``problem`` into reach-pattern classes."""
    st = problem.standards
    t = np.asarray(problem.branch_time_s, dtype=np.float64)
    n = t.shape[0]
    hd_thr = st.home_delivery_beyond_s if st.home_delivery_beyond_s is not None else np.inf
    s_reach = (
        np.asarray(problem.stop_walk_s, dtype=np.float64) <= st.stop_walk_s
        if len(problem.stop_ids)
        else np.zeros((n, 0), dtype=bool)
    )
    d_reach = np.asarray(problem.desk_reach, dtype=bool) if len(problem.desk_ids) else np.zeros((n, 0), dtype=bool)
    zone = problem.zones
    must = np.zeros(n, dtype=bool) if problem.must_meet is None else np.asarray(problem.must_meet, dtype=bool)
    key = np.concatenate(
        [t <= st.branch_drive_s, t <= hd_thr, s_reach, d_reach, (zone[:, None] >> np.arange(16)[None, :]) & 1,
         must[:, None]],
        axis=1,
    )  # fmt: skip
    packed = np.packbits(key.astype(np.uint8), axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    pop = np.zeros((problem.population.shape[0], len(first), problem.population.shape[2]))
    np.add.at(pop, cast(Any, (slice(None), inverse)), np.asarray(problem.population, dtype=np.float64))
    b = len(problem.branch_ids)
    return Classes(inverse, pop, zone[first], key[first, :b], key[first, b : 2 * b], s_reach[first], d_reach[first],
                   must[first] if must.any() else None)  # fmt: skip


@dataclass(frozen=True)
class Selected:
    """One solve of the selection MIP."""

    decision: PlanDecision | None
    status: str  # optimal, time_limit, infeasible
    value: float  # MIP objective of the incumbent
    bound: float  # HiGHS's dual bound of the MIP objective
    eta: float  # bound mode: the annual driving cost the MIP charged the incumbent
    estimated_operating: float  # annual bookmobile operating cost the MIP charged (dwell and driving)
    estimated_driving_s: float  # annual driving seconds the MIP assumed (estimate mode)


def stop_bounds(problem: PlannerProblem) -> tuple[np.ndarray, np.ndarray]:
    """Half the cheapest arcs in and out of every node (depot first): in money and in seconds."""
    cost = problem.stop_arc_cost()
    time = np.asarray(problem.stop_travel_s, dtype=np.float64)
    out = []
    for c in (cost, time):
        off = np.where(np.eye(len(c), dtype=bool), np.inf, c)
        half = 0.5 * (off.min(axis=0) + off.min(axis=1)) if len(c) > 1 else np.zeros(len(c))
        out.append(np.where(np.isfinite(half), half, 0.0))
    return out[0], out[1]


class SelectionModel:
    """The selection MIP of one problem (see the module docstring), built once and solved again after cuts."""

    def __init__(
        self,
        problem: PlannerProblem,
        cls: Classes,
        *,
        mode: Mode,
        alpha: float = 1.0,
        beta: float = 1.0,
        usable_s: float | None = None,
        goal: tuple[str, Any] | None = None,
        relax: frozenset[str] = frozenset(),
        tie_break: bool = True,
    ) -> None:
        self.problem = problem
        self.mode = mode
        self.goal = goal
        self.alpha = alpha
        m = SparseMilp()
        self.m = m
        bm = problem.bookmobile
        b = len(problem.branch_ids)
        hours = np.asarray(problem.branch_hours, dtype=np.float64)
        cost_bh = np.asarray(problem.branch_cost, dtype=np.float64)
        n_levels = hours.shape[1]
        keep, close = problem.keep_mask, problem.close_mask
        # branch levels
        y_idx = np.full((b, n_levels), -1, dtype=np.int64)
        for i in range(b):
            for h in range(n_levels):
                if np.isfinite(hours[i, h]) and not close[i]:
                    y_idx[i, h] = m.var(1, integer=True)[0]
        self.y_idx = y_idx
        self.open_vars: list[np.ndarray] = []
        for i in range(b):
            v = y_idx[i][y_idx[i] >= 0]
            self.open_vars.append(v)
            m.row(v, 1.0, float(keep[i]) if len(v) else 0.0, 1.0)
            if keep[i] and not len(v):
                raise InfeasibleProblemError(f"branch {problem.branch_ids[i]!r} is forced open but has no hours level")
        # stops and vehicles
        ks = bm.intervals
        self.ks = ks
        s = len(problem.stop_ids) if bm.max_vehicles > 0 else 0
        self.s = s
        z_idx = m.var(s * len(ks), integer=True).reshape(s, len(ks)) if s else np.zeros((0, len(ks)), dtype=np.int64)
        self.z_idx = z_idx
        v_max = bm.max_vehicles if s else 0
        self.w_idx = m.var(v_max + 1, integer=True)
        m.row(self.w_idx, 1.0, 1.0, 1.0)
        vehicles_coef = np.arange(v_max + 1, dtype=float)
        self.eta = -1
        dwell = np.asarray(problem.stop_dwell_s, dtype=np.float64) if s else np.zeros(0)
        weekdays = len(bm.weekdays)
        working = float(bm.shift_s - bm.lunch_s)
        stop_cost = np.zeros((s, len(ks)))  # annual operating money the cost rows charge each (stop, interval)
        self.leg_s = np.zeros(s)
        if s:
            for j in range(s):
                m.row(z_idx[j], 1.0, 0.0, 1.0)
            comm = np.asarray(problem.stop_community) if problem.stop_community is not None else np.full(s, -1)
            for c in sorted(set(comm.tolist()) - {-1}):
                members = np.flatnonzero(comm == c)
                if len(members) > 1:
                    m.row(z_idx[members].ravel(), 1.0, 0.0, 1.0)
            if problem.stop_conflict is not None:
                conflict = np.asarray(problem.stop_conflict, dtype=bool)
                for j, i in zip(*np.nonzero(conflict), strict=True):
                    m.row(np.concatenate([z_idx[j], self.open_vars[i]]), 1.0, 0.0, 1.0)
            per_year = np.array([WEEKS_PER_YEAR / k for k in ks])
            if mode == "bound":
                _, half_t = stop_bounds(problem)
                self.eta = int(m.var(1, 0.0, np.inf)[0])
                n_idx = m.var(len(ks), 0.0, float(s), integer=True)
                stop_cost = bm.per_hour * dwell[:, None] / 3600.0 * per_year[None, :]
                used = m.var(len(ks), integer=True)  # some stop runs every k weeks
                for q in range(len(ks)):
                    m.row(np.concatenate([[n_idx[q]], z_idx[:, q]]),
                          np.concatenate([[working - half_t[0]], -(dwell + half_t[1:])]), 0.0, np.inf)  # fmt: skip
                    m.row([n_idx[q], used[q]], [1.0, -1.0], 0.0, np.inf)
                    for j in range(s):
                        m.row([used[q], z_idx[j, q]], [1.0, -1.0], 0.0, np.inf)
                self._driving_bound(problem, z_idx, n_idx, used, per_year)
                pack_idx = [n_idx[q] for q, k in enumerate(ks) if k != 3]
                pack_coef = [1.0 / k for k in ks if k != 3]
                if 3 in ks:
                    q3 = m.var(1, 0.0, float(s), integer=True)[0]
                    m.row([q3, n_idx[ks.index(3)]], [3.0, -1.0], 0.0, np.inf)
                    pack_idx.append(q3)
                    pack_coef.append(1.0)
                m.row(np.concatenate([pack_idx, self.w_idx]), np.concatenate([pack_coef, -weekdays * vehicles_coef]),
                      -np.inf, 0.0)  # fmt: skip
                t_arr = np.asarray(problem.stop_travel_s, dtype=np.float64)
                off = np.where(np.eye(len(t_arr), dtype=bool), np.inf, t_arr)
                cheapest = off.min(axis=0)[1:] + off.min(axis=1)[1:]
                too_long = dwell + cheapest > working + 1e-9
            else:
                leg_s, leg_m = problem.stop_leg_estimate()
                self.leg_s = leg_s
                per_visit = beta * (bm.per_hour * (dwell + alpha * leg_s) / 3600.0 + bm.per_km * alpha * leg_m / 1e3)
                stop_cost = per_visit[:, None] * per_year[None, :]
                usable = working if usable_s is None else usable_s
                load = np.array([(dwell[j] + alpha * leg_s[j]) / k for j in range(s) for k in ks])
                m.row(np.concatenate([z_idx.ravel(), self.w_idx]),
                      np.concatenate([load, -weekdays * usable * vehicles_coef]), -np.inf, 0.0)  # fmt: skip
                too_long = dwell + alpha * leg_s > usable
            for j in np.flatnonzero(too_long).tolist():
                m.row(z_idx[j], 1.0, 0.0, 0.0)
        self.stop_cost = stop_cost
        self.driving_s = np.array([[WEEKS_PER_YEAR / k * alpha * self.leg_s[j] for k in ks] for j in range(s)])
        # desks
        dn = len(problem.desk_ids)
        o_idx = m.var(dn, integer=True) if dn else np.zeros(0, dtype=np.int64)
        self.o_idx = o_idx
        # home delivery
        nc = cls.pop.shape[1]
        hd_on = problem.standards.home_delivery_beyond_s is not None and problem.eligible_share > 0
        u_idx = m.var(nc, integer=True) if hd_on else np.zeros(0, dtype=np.int64)
        if hd_on:  # u_c = 1 exactly when a kept branch lies within the home-delivery threshold (no delivery there)
            for c in range(nc):
                vs = [self.open_vars[i] for i in np.flatnonzero(cls.reach_hd[c])]
                cat = np.concatenate(vs) if vs else np.zeros(0, dtype=np.int64)
                m.row(np.concatenate([[u_idx[c]], cat]), np.concatenate([[1.0], -np.ones(len(cat))]), -np.inf, 0.0)
                for v in vs:  # u_c >= branch open: delivery is not optional where a branch is near
                    m.row(np.concatenate([[u_idx[c]], v]), np.concatenate([[1.0], -np.ones(len(v))]), 0.0, np.inf)
        sen = problem.senior_group
        elig = cls.pop[:, :, sen] * problem.eligible_share if hd_on else np.zeros(cls.pop.shape[:2])

        # cost expression per year: constant + coefficients over variables
        cost_vars: list[int] = []
        cost_coef: list[float] = []
        closure = np.asarray(problem.closure_cost, dtype=float)
        const = float(closure.sum())
        for i in range(b):
            for h in range(n_levels):
                if y_idx[i, h] >= 0:
                    cost_vars.append(int(y_idx[i, h]))
                    cost_coef.append(cost_bh[i, h] - float(closure[i]))
        cost_vars += z_idx.ravel().tolist()
        cost_coef += stop_cost.ravel().tolist()
        cost_vars += self.w_idx.tolist()
        cost_coef += (bm.vehicle_annual * vehicles_coef).tolist()
        if self.eta >= 0:
            cost_vars.append(self.eta)
            cost_coef.append(1.0)
        if dn:
            cost_vars += o_idx.tolist()
            cost_coef += np.asarray(problem.desk_cost, dtype=float).tolist()
        hd_cost = problem.home_delivery_cost

        def cost_row(y: int) -> tuple[np.ndarray, np.ndarray, float]:
            if not hd_on:
                return np.array(cost_vars), np.array(cost_coef), const
            return (np.concatenate([cost_vars, u_idx]), np.concatenate([cost_coef, -hd_cost * elig[y]]),
                    const + hd_cost * float(elig[y].sum()))  # fmt: skip

        # meeting the standard, per class
        st = problem.standards
        need_std = (
            st.coverage_target is not None or bool(st.group_targets) or st.zone_max_loss is not None or goal is not None
            or cls.must is not None
        )  # fmt: skip
        mc_idx = m.var(nc) if need_std else np.zeros(0, dtype=np.int64)
        me_idx = m.var(nc) if need_std and hd_on else np.zeros(0, dtype=np.int64)
        if need_std:
            ok = [q for q, k in enumerate(ks) if k <= st.stop_max_interval]
            for c in range(nc):
                vs = [self.open_vars[i] for i in np.flatnonzero(cls.reach_b[c])]
                if s:
                    vs += [z_idx[j, ok] for j in np.flatnonzero(cls.reach_s[c])]
                if dn and st.desk_counts:
                    vs.append(o_idx[cls.reach_d[c]])
                cat = np.concatenate(vs).astype(np.int64) if vs else np.zeros(0, dtype=np.int64)
                m.row(np.concatenate([[mc_idx[c]], cat]), np.concatenate([[1.0], -np.ones(len(cat))]), -np.inf, 0.0)
                if hd_on:  # eligible seniors: met by the standard or by home delivery (1 - u)
                    m.row(np.concatenate([[me_idx[c]], cat, [u_idx[c]]]),
                          np.concatenate([[1.0], -np.ones(len(cat)), [1.0]]), -np.inf, 1.0)  # fmt: skip

        def covered_expr(y: int, mask_c: np.ndarray, groups: list[int]) -> tuple[np.ndarray, np.ndarray]:
            """Variables and coefficients of the people meeting the standard in the classes and groups given."""
            p = cls.pop[y][:, groups].sum(axis=1) * mask_c
            if not hd_on:
                return mc_idx, p
            e = elig[y] * mask_c if sen in groups else np.zeros(nc)
            return np.concatenate([mc_idx, me_idx]), np.concatenate([p - e, e])

        n_groups = cls.pop.shape[2]
        every = np.ones(nc)
        rows: list[tuple[str, Any, int, np.ndarray, np.ndarray, float]] = []  # (kind, key, year, vars, coefs, rhs)
        today_cov = covered_people(problem, access(problem, today(problem))) if st.zone_max_loss is not None else None
        for y in problem.years:
            if st.coverage_target is not None:
                v, cf = covered_expr(y, every, list(range(n_groups)))
                rows.append(("coverage", None, y, v, cf, st.coverage_target * float(cls.pop[y].sum())))
            for g, target in sorted(st.group_targets.items()):
                v, cf = covered_expr(y, every, [g])
                rows.append(("group", g, y, v, cf, target * float(cls.pop[y][:, g].sum())))
            if st.zone_max_loss is not None:
                assert today_cov is not None
                zones = problem.zones
                for z in sorted(set(cls.zone.tolist())):
                    mask_n = zones == z
                    tz = float(problem.population[y][mask_n].sum())
                    if tz <= 0:
                        continue
                    share_today = float(today_cov[y][mask_n].sum()) / tz
                    v, cf = covered_expr(y, (cls.zone == z).astype(float), list(range(n_groups)))
                    rows.append(("zone", z, y, v, cf, max(0.0, share_today - st.zone_max_loss) * tz))
        if "standards" not in relax:
            for _, _, _, v, cf, rhs in rows:
                m.row(v, cf, rhs - 1e-6, np.inf)
            if cls.must is not None:  # no gap in service: these residents meet the standard by some mode
                for c in np.flatnonzero(cls.must):
                    m.lb[int(mc_idx[c])] = 1.0

        # credit assignment (max_coverage and the credit floor; then also the tie-break of min_cost)
        need = problem.need_weights
        cred_vars: list[int] = []
        cred_coef_y: list[np.ndarray] = []
        want_credit = goal is None and (problem.objective == "max_coverage" or problem.min_credit is not None)
        if want_credit:
            b_credit = problem.credits.branch.credit(np.nan_to_num(hours, nan=0.0))
            s_credit = (
                problem.credits.mobile.credit(np.asarray(problem.stop_dwell_s)[:, None] / 3600.0 / np.asarray(ks)[None])
                if s
                else np.zeros((0, len(ks)))
            )
            d_credit = problem.credits.desk.credit(np.asarray(problem.desk_hours)) if dn else np.zeros(0)
            w_rest = np.einsum("ycg,g->yc", cls.pop, need) - elig * need[sen]  # (Y, C)
            w_elig = elig * need[sen]
            for part, weight in (("rest", w_rest), ("elig", w_elig)):
                if part == "elig" and not hd_on:
                    continue
                for c in range(nc):
                    if not weight[:, c].any():
                        continue
                    opts: list[tuple[int, float]] = []  # (variable, credit)
                    for i in np.flatnonzero(cls.reach_b[c]).tolist():
                        opts += [(int(y_idx[i, h]), float(b_credit[i, h])) for h in range(n_levels) if y_idx[i, h] >= 0]
                    if s:
                        for j in np.flatnonzero(cls.reach_s[c]).tolist():
                            opts += [(int(z_idx[j, q]), float(s_credit[j, q])) for q in range(len(ks))]
                    if dn:
                        opts += [(int(o_idx[d]), float(d_credit[d])) for d in np.flatnonzero(cls.reach_d[c])]
                    if part == "elig":
                        opts.append((-1, problem.credits.home_delivery))  # available when 1 - u_c
                    opts = [o for o in opts if o[1] > 0]
                    if not opts:
                        continue
                    x = m.var(len(opts))
                    m.row(x, 1.0, 0.0, 1.0)
                    for xv, (ov, _) in zip(x, opts, strict=True):
                        if ov >= 0:
                            m.row([xv, ov], [1.0, -1.0], -np.inf, 0.0)
                        else:
                            m.row([xv, u_idx[c]], [1.0, 1.0], -np.inf, 1.0)
                    cred_vars += x.tolist()
                    cred_coef_y.append(np.array([[o[1] * weight[y, c] for o in opts] for y in range(cls.pop.shape[0])]))

        # the epigraph variable (worst year): a cost, or a credit share
        goal_kind = goal[0] if goal is not None else problem.objective
        self.goal_kind = goal_kind
        t_col = int(m.var(1, 0.0, np.inf)[0] if goal_kind == "min_cost" else m.var(1, -1.0, 2.0)[0])
        self.t_col = t_col
        need_tot = np.einsum("ycg,g->y", cls.pop, need)
        cred_mat = np.concatenate(cred_coef_y, axis=1) if cred_coef_y else np.zeros((cls.pop.shape[0], 0))
        obj = np.zeros(m.n_vars)
        if goal_kind == "min_cost":
            for y in problem.years:
                v, cf, k0 = cost_row(y)
                m.row(np.concatenate([v, [t_col]]), np.concatenate([cf, [-1.0]]), -np.inf, -k0)  # T >= cost_y
            obj[t_col] = 1.0
            if tie_break and mode == "estimate" and cred_vars and goal is None:
                scale = max(1.0, float(np.asarray(problem.branch_cost).max(initial=1.0)))
                y0 = problem.years[0]
                obj[cred_vars] -= TIE * scale * cred_mat[y0] / max(need_tot[y0], 1e-9)
        elif goal_kind == "max_coverage":
            for y in problem.years:  # T <= credit_y / need_y
                m.row(np.concatenate([cred_vars, [t_col]]),
                      np.concatenate([-cred_mat[y] / max(need_tot[y], 1e-9), [1.0]]), -np.inf, 0.0)  # fmt: skip
            obj[t_col] = -1.0
            if tie_break and mode == "estimate":  # the bound mode keeps the pure objective: its bound is exact
                v, cf, _ = cost_row(problem.years[0])
                scale = max(float(problem.budget) if problem.budget else float(np.abs(cf).sum()), 1.0)
                np.add.at(obj, v, TIE * cf / scale)
        else:  # max_share of one standard row (diagnostics)
            kind, key, year = goal[1] if goal is not None else (None, None, 0)
            chosen = [r for r in rows if (r[0], r[1], r[2]) == (kind, key, year)]
            _, _, _, v, cf, _ = chosen[0]
            np.add.at(obj, v, -cf)
        self.rows = rows
        if problem.min_credit is not None and cred_vars and goal is None:
            for y in problem.years:
                m.row(cred_vars, cred_mat[y] / max(need_tot[y], 1e-9), problem.min_credit - 1e-7, np.inf)
        budget = problem.budget if "budget" not in relax else None
        if budget is not None:
            for y in problem.years:
                v, cf, k0 = cost_row(y)
                m.row(v, cf, -np.inf, float(budget) - k0 + 1e-6)
        self.objective = obj
        self.cost_row = cost_row
        self.cuts = 0

    def _driving_bound(self, problem: PlannerProblem, z_idx: np.ndarray, n_idx: np.ndarray, used: np.ndarray,
                       per_year: np.ndarray) -> None:  # fmt: skip
        """``eta`` at least half of every selected stop's cheapest arcs in and out from the *selected* stops of its
        interval (or the depot), plus half the depot's arcs of each route-day.

        In any set of route-days every stop has one arc in and one out, from a stop of its own interval or the
        depot, and every arc is the out-arc of one node and the in-arc of another, so the driving cost is half the
        sum over the nodes of their in- and out-arcs. ``in[j, k] >= c[a_r, j] (z[j, k] - sum_{q < r} z[a_q, k])``
        for the candidates a_1, a_2, ... in order of cost: when none of the cheaper ones runs in the same
        interval, the arc in costs at least ``c[a_r, j]``; the depot always runs, which ends the list. The
        depot's first route-day of an interval pays its cheapest arc to a selected stop likewise, further
        route-days at least the cheapest arc of all.
        """
        m = self.m
        cost = problem.stop_arc_cost()
        s, nk = z_idx.shape
        depth = DEPTH  # candidates per list: a cut-off list stays valid, only weaker
        terms: list[int] = [self.eta]
        coefs: list[float] = [1.0]
        for q in range(nk):
            w = per_year[q]
            for j in range(s):
                for arcs in (cost[:, j + 1], cost[j + 1, :]):  # arcs in, arcs out (node 0 the depot)
                    var = int(m.var(1, 0.0, np.inf)[0])
                    terms.append(var)
                    coefs.append(-0.5 * w)
                    order = [a for a in np.argsort(arcs, kind="stable").tolist() if a != j + 1]
                    cheaper: list[int] = []
                    for a in order[:depth]:
                        rhs = np.concatenate([[1.0, -arcs[a]], np.full(len(cheaper), arcs[a])])
                        m.row(np.concatenate([[var, z_idx[j, q]], z_idx[cheaper, q]]), rhs, 0.0, np.inf)
                        if a == 0:
                            break
                        cheaper.append(a - 1)
            for arcs in (cost[0, 1:], cost[1:, 0]):  # the depot's arcs out and in
                var = int(m.var(1, 0.0, np.inf)[0])
                terms += [var, int(n_idx[q]), int(used[q])]
                smallest = float(arcs.min())
                coefs += [-0.5 * w, -0.5 * w * smallest, 0.5 * w * smallest]
                order = np.argsort(arcs, kind="stable").tolist()
                for r, a in enumerate(order[:depth]):
                    m.row(np.concatenate([[var, used[q]], z_idx[order[:r], q]]),
                          np.concatenate([[1.0, -arcs[a]], np.full(r, arcs[a])]), 0.0, np.inf)  # fmt: skip
        m.row(terms, coefs, 0.0, np.inf)

    # --- cuts -------------------------------------------------------------------------------------------------------
    def _pairs(self, interval: np.ndarray) -> np.ndarray:
        iv = np.asarray(interval, dtype=np.int64)[: self.s]
        return np.array([self.z_idx[j, self.ks.index(int(iv[j]))] for j in np.flatnonzero(iv > 0)], dtype=np.int64)

    def add_route_cut(self, interval: np.ndarray, vehicles: int, value: float) -> None:
        """Every superset of these (stop, interval) pairs with at most ``vehicles`` vehicles drives for at least
        ``value`` a year (``value`` must bound the set's optimal routing cost from below)."""
        pairs = self._pairs(interval)
        if self.eta < 0 or value <= 0 or not len(pairs):
            return
        more = self.w_idx[vehicles + 1 :]
        self.m.row(np.concatenate([[self.eta], pairs, more]),
                   np.concatenate([[1.0], -value * np.ones(len(pairs)), value * np.ones(len(more))]),
                   value * (1 - len(pairs)), np.inf)  # fmt: skip
        self.cuts += 1

    def add_share_cut(self, interval: np.ndarray, shares: np.ndarray) -> None:
        """``eta >= sum shares[j] z[j, k_j]`` over these (stop, interval) pairs: valid when no subset of the pairs
        can be routed for less than the sum of its shares (and routing more stops never costs less)."""
        iv = np.asarray(interval, dtype=np.int64)[: self.s]
        js = np.flatnonzero(iv > 0)
        if self.eta < 0 or not len(js) or not np.any(np.asarray(shares)[js] != 0):
            return
        pairs = np.array([self.z_idx[j, self.ks.index(int(iv[j]))] for j in js], dtype=np.int64)
        self.m.row(np.concatenate([[self.eta], pairs]), np.concatenate([[1.0], -np.asarray(shares)[js]]), 0.0, np.inf)
        self.cuts += 1

    def add_unroutable_cut(self, interval: np.ndarray, vehicles: int) -> None:
        """No superset of these pairs can be routed with at most ``vehicles`` vehicles."""
        pairs = self._pairs(interval)
        if not len(pairs):
            return
        more = self.w_idx[vehicles + 1 :]
        self.m.row(np.concatenate([pairs, more]), np.concatenate([-np.ones(len(pairs)), np.ones(len(more))]),
                   1.0 - len(pairs), np.inf)  # fmt: skip
        self.cuts += 1

    def exclude_selection(self, interval: np.ndarray, vehicles: int) -> None:
        """Leave out every plan that serves exactly these (stop, interval) pairs with exactly ``vehicles``."""
        iv = np.asarray(interval, dtype=np.int64)[: self.s]
        chosen = np.zeros(self.z_idx.shape, dtype=bool)
        for j in np.flatnonzero(iv > 0):
            chosen[j, self.ks.index(int(iv[j]))] = True
        idx = np.concatenate([self.z_idx.ravel(), [self.w_idx[vehicles]]])
        coef = np.concatenate([np.where(chosen.ravel(), -1.0, 1.0), [-1.0]])
        self.m.row(idx, coef, 1.0 - float(chosen.sum()) - 1.0, np.inf)

    def exclude_pattern(self, open_mask: np.ndarray) -> None:
        """Leave out every plan whose set of open branches is ``open_mask``."""
        idx: list[np.ndarray] = []
        coef: list[np.ndarray] = []
        for i, is_open in enumerate(np.asarray(open_mask, dtype=bool)):
            v = self.open_vars[i]
            idx.append(v)
            coef.append(np.full(len(v), -1.0 if is_open else 1.0))
        self.m.row(np.concatenate(idx), np.concatenate(coef), 1.0 - float(np.sum(open_mask)), np.inf)

    # --- solving ----------------------------------------------------------------------------------------------------
    def solve(self, *, time_limit_s: float, gap: float) -> Selected:
        """Solve the model with the cuts added so far."""
        res = self.m.solve(self.objective, time_limit_s, gap)
        if res.x is None:
            return Selected(None, res.status, np.inf, res.bound, 0.0, 0.0, 0.0)
        xv = res.x
        p = self.problem
        b, n_levels = self.y_idx.shape
        level = np.full(b, -1, dtype=np.int64)
        for i in range(b):
            for h in range(n_levels):
                if self.y_idx[i, h] >= 0 and xv[self.y_idx[i, h]] > 0.5:
                    level[i] = h
        interval = np.zeros(len(p.stop_ids), dtype=np.int64)
        chosen = np.zeros((self.s, len(self.ks)), dtype=bool)
        for j in range(self.s):
            for q, k in enumerate(self.ks):
                if xv[self.z_idx[j, q]] > 0.5:
                    interval[j] = k
                    chosen[j, q] = True
        desks = xv[self.o_idx] > 0.5 if len(self.o_idx) else np.zeros(0, dtype=bool)
        vehicles = int(np.argmax(xv[self.w_idx])) if len(self.w_idx) else 0
        eta = float(xv[self.eta]) if self.eta >= 0 else 0.0
        operating = float(self.stop_cost[chosen].sum()) + eta
        driving = float(self.driving_s[chosen].sum()) if self.s else 0.0
        return Selected(PlanDecision(level, interval, desks, vehicles), res.status, res.value, res.bound, eta,
                        operating, driving)  # fmt: skip

    def bound_of(self, mip_bound: float) -> float:
        """A bound on the primary objective from a dual bound of the MIP objective: a lower bound on the worst
        year's cost (``min_cost``), an upper bound on the worst year's credit share (``max_coverage``)."""
        if self.goal_kind == "max_coverage":
            return -mip_bound
        return mip_bound
