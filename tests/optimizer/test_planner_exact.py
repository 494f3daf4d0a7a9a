"""The joint planner against exhaustive enumeration of every decision on small random instances.

Each instance is enumerated here from the definitions (branch levels, stop intervals, desks, vehicles; coverage,
credit, costs and standards recomputed from the raw arrays, not through the planner's evaluation), with every
stop set timetabled exactly by its own enumeration: tours by permutations, route-days by splitting subsets, and
the route-days packed onto the fleet's (vehicle, weekday) wheels. The planner must reach the enumerated optimum
and its bound must never pass it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest

from optimizer.errors import InfeasibleProblemError
from optimizer.params import SolveParams
from optimizer.planner import (
    BookmobileCosts,
    CreditRule,
    Credits,
    PlannerProblem,
    Standards,
    solve_plan,
)

WEEKS = 52.0


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]), dtype=np.float64)


@dataclass
class Instance:
    problem: PlannerProblem
    description: str


def instance(seed: int) -> Instance:
    """A random small planning problem: up to 6 branches with hours levels, up to 10 candidate stops with
    intervals, up to 3 desks, home delivery, up to 2 vehicles on 1 to 3 weekdays, one or two years."""
    rng = np.random.default_rng(seed)
    big_stops = seed % 5 == 4  # every fifth instance: many stops and one interval, few branches
    b = int(rng.integers(1, 3)) if big_stops else int(rng.integers(1, 7))
    s = int(rng.integers(8, 11)) if big_stops else int(rng.integers(0, 7))
    d = int(rng.integers(0, 4))
    n = int(rng.integers(12, 30))
    n_years = int(rng.integers(1, 3))
    side = 25_000.0
    villages = rng.uniform(0, side, (int(rng.integers(3, 8)), 2))  # residents live in villages, stops serve them
    xy = villages[rng.integers(0, len(villages), n)] + rng.normal(0, 600, (n, 2))
    bxy = villages[rng.integers(0, len(villages), b)] + rng.normal(0, 300, (b, 2)) if b else np.zeros((0, 2))
    sxy = (villages[rng.integers(0, len(villages), s)] + rng.normal(0, 800, (s, 2))) if s else np.zeros((0, 2))
    dxy = rng.uniform(0, side, (d, 2))
    pop0 = rng.integers(5, 120, (1, n, 3)).astype(float)
    pop = pop0 if n_years == 1 else np.concatenate([pop0, np.round(pop0 * np.array([0.9, 1.0, 1.3]))], axis=0)
    n_levels = 1 if b >= 5 else int(rng.integers(1, 4))
    hours = np.round(rng.uniform(10, 45, (b, n_levels)))
    hours = np.sort(hours, axis=1)
    if n_levels > 1:
        hours[rng.random((b, n_levels)) < 0.2] = np.nan
        hours[:, 0] = np.where(np.isnan(hours[:, 0]), 12.0, hours[:, 0])
    current = np.zeros(b, dtype=np.int64)
    intervals = (2,) if big_stops else tuple(sorted(rng.choice([1, 2, 3, 4], int(rng.integers(1, 3)), replace=False)))
    vehicles = int(rng.integers(0, 3)) if s else 0
    weekdays = tuple(range(int(rng.integers(1, 4))))
    depot_xy = np.vstack([bxy[:1] if b else np.zeros((1, 2)), sxy])
    travel = _dist(depot_xy, depot_xy) * 1.3 / (40 / 3.6)
    road = _dist(depot_xy, depot_xy) * 1.3
    shift_h = float(rng.choice([5.0, 6.0, 8.0]))
    dwell = np.round(rng.uniform(0.5, 1.6, s) * 3600) if s else np.zeros(0)
    community = np.where(rng.random(s) < 0.3, rng.integers(0, 2, s), -1) if s else np.zeros(0, dtype=np.int64)
    walk = _dist(xy, sxy) / 1.3 if s else np.zeros((n, 0))
    conflict = (_dist(sxy, bxy) < 2500) if s and b else None
    zone = (xy[:, 0] > side / 2).astype(int)
    args: dict[str, Any] = dict(
        population=pop, branch_ids=tuple(f"b{i}" for i in range(b)), branch_time_s=_dist(xy, bxy) * 1.3 / (50 / 3.6),
        branch_hours=hours, branch_cost=30_000.0 + np.nan_to_num(hours) * 52 * 40, current_level=current,
        closure_cost=np.round(rng.uniform(0, 15_000, b)), need=np.array([0.8, 0.7, 0.9]), zone=zone,
        zone_names=("west", "east"), stop_ids=tuple(f"s{j}" for j in range(s)), stop_walk_s=walk,
        stop_dwell_s=dwell, stop_community=community, stop_travel_s=travel, stop_dist_m=road,
        stop_conflict=conflict, desk_ids=tuple(f"d{k}" for k in range(d)), desk_reach=_dist(xy, dxy) < 3500,
        desk_hours=np.full(d, 8.0), desk_cost=np.round(rng.uniform(5_000, 20_000, d)),
        eligible_share=float(rng.choice([0.0, 0.2, 1.0])), home_delivery_cost=300.0,
        credits=Credits(branch=CreditRule(1.0, 40.0, 0.5), mobile=CreditRule(0.6, 2.0, 0.5),
                        desk=CreditRule(0.5, 20.0, 0.5), home_delivery=0.5),
        bookmobile=BookmobileCosts(vehicle_annual=3_000.0, per_hour=20.0, per_km=0.4, max_vehicles=vehicles,
                                   weekdays=weekdays, shift_s=int(shift_h * 3600), lunch_s=1800,
                                   intervals=intervals),
        years=tuple(range(n_years)),
    )  # fmt: skip
    objective = "min_cost" if seed % 2 == 0 else "max_coverage"
    problem = PlannerProblem(**args, objective="min_cost")
    brute = Brute(problem)
    rng2 = np.random.default_rng(seed + 1000)
    if objective == "min_cost":
        # a target some plans meet: the coverage of a random plan with its stops, a little lower
        shares = brute.random_shares(rng2)
        st = Standards(branch_drive_s=float(rng.choice([600.0, 900.0])), stop_walk_s=1800.0,
                       stop_max_interval=2, desk_counts=bool(rng.random() < 0.5),
                       home_delivery_beyond_s=float(rng.choice([900.0, 1500.0])),
                       coverage_target=round(float(shares) * 0.97, 3),
                       group_targets={2: 0.5} if rng.random() < 0.3 else {},
                       zone_max_loss=0.4 if rng.random() < 0.3 else None)  # fmt: skip
        problem = PlannerProblem(**{**args, "standards": st}, objective="min_cost")
    else:
        st = Standards(branch_drive_s=900.0, stop_walk_s=1800.0, home_delivery_beyond_s=1200.0,
                       coverage_target=None)  # fmt: skip
        budget = float(brute.today_cost() * rng.uniform(0.4, 0.9))
        problem = PlannerProblem(**{**args, "standards": st}, objective="max_coverage", budget=budget)
    desc = f"seed {seed}: {objective}, {b} branches x {n_levels} levels, {s} stops {intervals}, {d} desks, " \
           f"{vehicles} vehicle(s) x {len(weekdays)} day(s), {n_years} year(s)"  # fmt: skip
    return Instance(problem, desc)


class Brute:
    """Exhaustive enumeration of one problem, from the definitions."""

    def __init__(self, p: PlannerProblem) -> None:
        self.p = p
        self.pop = np.asarray(p.population, dtype=float)  # (Y, N, G)
        self.b = len(p.branch_ids)
        self.s = len(p.stop_ids)
        self.d = len(p.desk_ids)

    @property
    def tour(self) -> dict[int, float]:
        if not hasattr(self, "_tour"):
            self._tour = self._tours()
        return self._tour

    # --- routing ----------------------------------------------------------------------------------------------------
    def _arc(self, a: int, c: int) -> float:
        bm = self.p.bookmobile
        t = float(np.asarray(self.p.stop_travel_s)[a, c])
        dm = float(np.asarray(self.p.stop_dist_m)[a, c])
        return bm.per_hour * t / 3600.0 + bm.per_km * dm / 1000.0

    def _tours(self) -> dict[int, float]:
        """Cheapest feasible depot tour of every subset of stops, by trying every order."""
        p = self.p
        bm = p.bookmobile
        working = bm.shift_s - bm.lunch_s
        travel = np.asarray(p.stop_travel_s, dtype=float) if self.s else np.zeros((1, 1))
        dwell = np.asarray(p.stop_dwell_s, dtype=float) if self.s else np.zeros(0)
        best: dict[int, float] = {0: 0.0}
        for size in range(1, self.s + 1):
            any_fit = False
            for subset in itertools.combinations(range(self.s), size):
                if dwell[list(subset)].sum() > working:
                    continue
                mask = sum(1 << j for j in subset)
                value = math.inf
                for order in itertools.permutations(subset):
                    path = (0, *(j + 1 for j in order), 0)
                    t = sum(travel[a, c] for a, c in itertools.pairwise(path)) + dwell[list(subset)].sum()
                    if t <= working + 1e-9:
                        value = min(value, sum(self._arc(a, c) for a, c in itertools.pairwise(path)))
                if value < math.inf:
                    best[mask] = value
                    any_fit = True
            if not any_fit:
                break  # no tour of this size fits, so none larger does
        return best

    @cache  # noqa: B019 - one Brute per instance
    def _split(self, mask: int) -> tuple[float, ...]:
        """Least cost of splitting ``mask`` into exactly n feasible tours, for n = 0, 1, ..."""
        if mask == 0:
            return (0.0,)
        low = mask & -mask
        rest = mask ^ low
        out: list[float] = []
        sub = rest
        while True:
            tour = sub | low
            if tour in self.tour:
                for n, v in enumerate(self._split(mask ^ tour)):
                    while len(out) <= n + 1:
                        out.append(math.inf)
                    out[n + 1] = min(out[n + 1], self.tour[tour] + v)
            if sub == 0:
                break
            sub = (sub - 1) & rest
        return tuple(out) if out else (math.inf,)

    def routing(self, interval: tuple[int, ...], vehicles: int) -> float:
        """Least annual driving money of a periodic timetable serving every stop with its interval."""
        if not any(interval):
            return 0.0
        if vehicles == 0:
            return math.inf
        wheels = vehicles * len(self.p.bookmobile.weekdays)
        classes = sorted({k for k in interval if k})
        options = []
        for k in classes:
            mask = sum(1 << j for j, kk in enumerate(interval) if kk == k)
            options.append([(n, v) for n, v in enumerate(self._split(mask)) if n and v < math.inf])
        best = math.inf
        for combo in itertools.product(*options):
            counts = {k: n for k, (n, _) in zip(classes, combo, strict=True)}
            used = sum(n / k for k, n in counts.items() if k != 3) + math.ceil(counts.get(3, 0) / 3)
            if used <= wheels + 1e-9:
                best = min(best, sum(WEEKS / k * v for k, (_, v) in zip(classes, combo, strict=True)))
        return best

    # --- enumeration ------------------------------------------------------------------------------------------------
    def branch_options(self) -> list[tuple[int, ...]]:
        hours = np.asarray(self.p.branch_hours)
        per = []
        for i in range(self.b):
            levels = [h for h in range(hours.shape[1]) if np.isfinite(hours[i, h])]
            if self.p.keep_mask[i]:
                per.append(levels)
            elif self.p.close_mask[i]:
                per.append([-1])
            else:
                per.append([-1, *levels])
        return list(itertools.product(*per))

    def stop_options(self) -> list[tuple[int, ...]]:
        p = self.p
        if not self.s or p.bookmobile.max_vehicles == 0:
            return [(0,) * self.s]
        comm = np.asarray(p.stop_community)
        out = []
        for iv in itertools.product([0, *p.bookmobile.intervals], repeat=self.s):
            on = np.array(iv) > 0
            labels = comm[on & (comm >= 0)]
            if len(labels) != len(set(labels.tolist())):
                continue
            out.append(iv)
        return out

    def evaluate(self, level: tuple[int, ...], interval: tuple[int, ...], desks: tuple[bool, ...]) -> dict[str, Any]:
        """Coverage, credit and non-bookmobile cost of one decision, per year."""
        p, st, cr = self.p, self.p.standards, self.p.credits
        n = self.pop.shape[1]
        hours = np.asarray(p.branch_hours)
        t = np.asarray(p.branch_time_s)
        open_b = np.array([lv >= 0 for lv in level], dtype=bool)
        near = t[:, open_b].min(axis=1) if open_b.any() else np.full(n, np.inf)
        meets = np.zeros(n, dtype=bool)
        credit = np.zeros(n)
        for i in np.flatnonzero(open_b):
            reach = t[:, i] <= st.branch_drive_s
            meets |= reach
            h = hours[i, level[i]]
            credit = np.maximum(credit, np.where(reach, cr.branch.weight * min(1.0, h / cr.branch.full_hours)
                                                 ** cr.branch.exponent, 0.0))  # fmt: skip
        for j, k in enumerate(interval):
            if not k:
                continue
            reach = np.asarray(p.stop_walk_s)[:, j] <= st.stop_walk_s
            if k <= st.stop_max_interval:
                meets |= reach
            h = float(np.asarray(p.stop_dwell_s)[j]) / 3600.0 / k
            credit = np.maximum(credit, np.where(reach, cr.mobile.weight * min(1.0, h / cr.mobile.full_hours)
                                                 ** cr.mobile.exponent, 0.0))  # fmt: skip
        for q, on in enumerate(desks):
            if not on:
                continue
            reach = np.asarray(p.desk_reach)[:, q]
            if st.desk_counts:
                meets |= reach
            h = float(np.asarray(p.desk_hours)[q])
            credit = np.maximum(credit, np.where(reach, cr.desk.weight * min(1.0, h / cr.desk.full_hours)
                                                 ** cr.desk.exponent, 0.0))  # fmt: skip
        hd = (near > st.home_delivery_beyond_s) if (st.home_delivery_beyond_s is not None
                                                    and p.eligible_share > 0) else np.zeros(n, dtype=bool)  # fmt: skip
        need = np.asarray(p.need)
        years = []
        for y in range(self.pop.shape[0]):
            pop = self.pop[y]
            seniors = pop[:, 2]
            recipients = np.where(hd, seniors * p.eligible_share, 0.0)
            covered = pop.copy() * meets[:, None]
            covered[:, 2] = np.where(meets, seniors, recipients)
            cred = (pop * credit[:, None] * need[None, :]).sum()
            cred += (recipients * (np.maximum(credit, cr.home_delivery) - credit)).sum() * need[2]
            run = sum(float(p.branch_cost[i, level[i]]) for i in range(self.b) if level[i] >= 0)
            closure = sum(float(p.closure_cost[i]) for i in range(self.b) if level[i] < 0)
            desk_cost = sum(float(p.desk_cost[q]) for q, on in enumerate(desks) if on)
            years.append({
                "covered": covered, "credit_share": cred / (pop * need[None, :]).sum(),
                "cost": run + closure + desk_cost + recipients.sum() * p.home_delivery_cost,
            })  # fmt: skip
        return {"years": years}

    def meets_standards(self, ev: dict[str, Any], today: dict[str, Any]) -> bool:
        st = self.p.standards
        zone = np.asarray(self.p.zone)
        for y in self.p.years:
            cov = ev["years"][y]["covered"]
            pop = self.pop[y]
            if st.coverage_target is not None and cov.sum() < st.coverage_target * pop.sum() - 1e-6:
                return False
            for g, target in st.group_targets.items():
                if cov[:, g].sum() < target * pop[:, g].sum() - 1e-6:
                    return False
            if st.zone_max_loss is not None:
                base = today["years"][y]["covered"]
                for z in set(zone.tolist()):
                    m = zone == z
                    tot = pop[m].sum()
                    if tot and (base[m].sum() - cov[m].sum()) / tot > st.zone_max_loss + 1e-6:
                        return False
        return True

    def bookmobile_cost(self, interval: tuple[int, ...]) -> float:
        """Cheapest fleet for the stop set: vehicles, dwell hours and routed driving."""
        bm = self.p.bookmobile
        dwell = sum(WEEKS / k * bm.per_hour * float(np.asarray(self.p.stop_dwell_s)[j]) / 3600.0
                    for j, k in enumerate(interval) if k)  # fmt: skip
        if not any(interval):
            return 0.0
        return min(
            (v * bm.vehicle_annual + dwell + self.routing(interval, v) for v in range(1, bm.max_vehicles + 1)),
            default=math.inf,
        )

    def today_cost(self) -> float:
        ev = self.evaluate(tuple(int(x) for x in self.p.current_level), (0,) * self.s, (False,) * self.d)
        return max(y["cost"] for y in ev["years"])

    def random_shares(self, rng: np.random.Generator) -> float:
        level = tuple(int(rng.choice([-1, 0])) for _ in range(self.b))
        stops = self.stop_options()
        iv = stops[int(rng.integers(len(stops)))]
        ev = self.evaluate(level, iv, tuple(bool(x) for x in rng.random(self.d) < 0.5))
        return min(float(y["covered"].sum() / self.pop[i].sum()) for i, y in enumerate(ev["years"]))

    def optimum(self) -> float | None:
        """The best objective over every decision (None: no decision meets the constraints)."""
        p = self.p
        today = self.evaluate(tuple(int(x) for x in p.current_level), (0,) * self.s, (False,) * self.d)
        conflict = np.asarray(p.stop_conflict, dtype=bool) if p.stop_conflict is not None else None
        stop_cost = {iv: self.bookmobile_cost(iv) for iv in self.stop_options()}
        best: float | None = None
        for level in self.branch_options():
            open_b = np.array([lv >= 0 for lv in level], dtype=bool)
            for desks in itertools.product([False, True], repeat=self.d):
                for iv, bm_cost in stop_cost.items():
                    if not math.isfinite(bm_cost):
                        continue
                    if conflict is not None and (conflict[np.array(iv) > 0][:, open_b]).any():
                        continue
                    ev = self.evaluate(level, iv, desks)
                    if not self.meets_standards(ev, today):
                        continue
                    costs = [ev["years"][y]["cost"] + bm_cost for y in p.years]
                    if p.objective == "min_cost":
                        value = max(costs)
                        if best is None or value < best:
                            best = value
                    else:
                        if max(costs) > p.budget * (1 + 1e-9):  # type: ignore[operator]
                            continue
                        value = min(ev["years"][y]["credit_share"] for y in p.years)
                        if best is None or value > best:
                            best = value
        return best


SEEDS = list(range(32))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_planner_equals_exhaustive_enumeration(seed: int) -> None:
    inst = instance(seed)
    p = inst.problem
    truth = Brute(p).optimum()
    params = SolveParams(time_limit_s=60.0, seed=0)
    if truth is None:
        with pytest.raises(InfeasibleProblemError):
            solve_plan(p, params=params, max_rounds=400, rounds_per_pattern=400)
        return
    r = solve_plan(p, params=params, max_rounds=400, rounds_per_pattern=400)
    assert r.objective == pytest.approx(truth, rel=1e-5, abs=1e-6), (inst.description, r.summary())
    assert r.bound is not None, inst.description
    if p.objective == "min_cost":
        assert r.bound <= truth * (1 + 1e-6) + 1e-6, (inst.description, r.bound, truth)
    else:
        assert r.bound >= truth - 1e-6, (inst.description, r.bound, truth)
    assert r.status == "optimal", (inst.description, r.summary())


def test_the_instances_exercise_every_part_of_the_model() -> None:
    """The random instances are not all alike: stops, desks, home delivery, two years and both objectives."""
    problems = [instance(seed).problem for seed in SEEDS]
    assert sum(len(p.stop_ids) >= 8 for p in problems) >= 5
    assert sum(len(p.branch_ids) == 6 or np.asarray(p.branch_hours).shape[1] == 3 for p in problems) >= 5
    assert sum(len(p.desk_ids) > 0 for p in problems) >= 10
    assert sum(p.eligible_share > 0 for p in problems) >= 10
    assert sum(p.population.shape[0] == 2 for p in problems) >= 10
    assert sum(p.bookmobile.max_vehicles > 0 and len(p.stop_ids) > 0 for p in problems) >= 15
    assert {p.objective for p in problems} == {"min_cost", "max_coverage"}
