"""Periodic timetables: the exact evaluator on a hand-made timetable, the validity checker, and re-planning."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from optimizer._openvrp import best_open_path, improve_routes, path_travel
from optimizer.params import SolveParams
from optimizer.replan import (
    PeriodicTimetable,
    check_timetable,
    crowfly_travel,
    cycle_driving,
    evaluate_timetable,
    replan_timetable,
    route_day_driving,
    span_limit,
)

H = 3600.0


def two_route_days() -> tuple[PeriodicTimetable, np.ndarray]:
    """Route-day A (weekly, Monday): stops 0 -> 1 -> 2; route-day B (fortnightly, Tuesday): stops 3 -> 4.

    Travel (s): 0-1 600, 1-2 900, 0-2 1200, 3-4 1800; dwell 20 min everywhere; stop 2 is listed before stop 1
    but arrives before it, so A drives 0 -> 2 -> 1.
    """
    travel = np.array(
        [
            [0, 600, 1200, 5000, 5000],
            [600, 0, 900, 5000, 5000],
            [1200, 900, 0, 5000, 5000],
            [5000, 5000, 5000, 0, 1800],
            [5000, 5000, 5000, 1800, 0],
        ],
        dtype=float,
    )
    tt = PeriodicTimetable(
        lon=np.array([0.0, 0.01, 0.02, 1.0, 1.02]),
        lat=np.zeros(5),
        dwell=np.full(5, 1200.0),
        interval=np.array([1, 1, 1, 2, 2]),
        # stop 2 is listed before stop 1 but arrives later: order is by arrival
        arrival=np.array([9 * H, 9 * H + 1800 + 1500, 9 * H + 1800, 14 * H, 14 * H + 1200 + 1800]),
        route_day=np.array([0, 0, 0, 1, 1]),
        weekday=np.array([0, 1]),
        phase=np.array([0, 1]),
        mobile=("M", "M"),
        route=("A", "B"),
        stop_id=("s0", "s1", "s2", "s3", "s4"),
    )
    return tt, travel


def test_evaluator_matches_the_hand_computed_driving() -> None:
    tt, travel = two_route_days()
    # arrival order of A is 0, 2, 1: driving 1200 + 900
    assert [o.tolist() for o in tt.orders()] == [[0, 2, 1], [3, 4]]
    np.testing.assert_allclose(route_day_driving(tt, travel), [2100.0, 1800.0])
    assert tt.cycle_weeks == 2
    assert cycle_driving(tt, travel) == pytest.approx(2 * 2100 + 1800)
    # A: clock 09:00 -> 10:15 (4500 s), dwell + driving 3600 + 2100 = 5700 s; B: 14:00 -> 15:10 (4200 s) and
    # 2400 + 1800 = 4200 s. L = 2 weeks: A runs twice a cycle, B once.
    assert span_limit(tt, travel) == pytest.approx(5700.0)
    report = evaluate_timetable(tt, travel)
    assert report.vehicle_days == 3 and report.scored and report.mobile_conflicts == ()
    assert report.intervals == {1: 3, 2: 2}


def test_crowfly_model_is_haversine_times_circuity_over_speed() -> None:
    t = crowfly_travel(np.array([0.0, 0.0]), np.array([0.0, 1.0]))
    km = 6371.0088 * np.pi / 180
    assert t[0, 1] == pytest.approx(km * 1.3 / 40 * 3600, rel=1e-9)
    assert t[1, 0] == t[0, 1] and t[0, 0] == 0


def test_excluded_when_route_days_mix_intervals_or_stops_overlap() -> None:
    tt, travel = two_route_days()
    mixed = replace(tt, interval=np.array([1, 2, 1, 2, 2]))
    assert "mix intervals" in (evaluate_timetable(mixed, travel).excluded_reason or "")
    overlap = replace(tt, arrival=np.array([9 * H, 9 * H + 600, 9 * H + 300, 14 * H, 14 * H + 600]))
    report = evaluate_timetable(overlap, travel)
    assert report.overlapping_pairs == 3 and "overlap in time" in (report.excluded_reason or "")


def test_the_real_timetable_is_valid_against_itself() -> None:
    tt, travel = two_route_days()
    # times are not consistent with travel in the hand-made one (stop 1 waits), so allow a wide tolerance
    assert check_timetable(tt, travel, tt, travel, mode="same-day", time_tolerance_s=1e9) == []


def test_checker_names_every_broken_rule() -> None:
    tt, travel = two_route_days()

    def violations(new: PeriodicTimetable, mode: str = "same-day") -> str:
        return "\n".join(check_timetable(new, travel, tt, travel, mode=mode, time_tolerance_s=1e9))  # type: ignore[arg-type]

    assert "missing or changed" in violations(replace(tt, dwell=np.array([1200.0, 1200, 600, 1200, 1200])))
    assert "mixes intervals" in violations(replace(tt, route_day=np.array([0, 0, 1, 1, 1])))
    far = replace(tt, route_day=np.array([0, 1, 0, 1, 0]), interval=np.array([1, 2, 1, 2, 1]))
    assert "over the limit" in violations(far)
    clash = replace(tt, weekday=np.array([0, 0]), phase=np.array([0, 1]))
    assert "same Monday of the cycle" in violations(clash, "free")
    assert "moved to another weekday" in violations(replace(tt, weekday=np.array([2, 1])))
    assert "moved to another weekday" not in violations(replace(tt, weekday=np.array([2, 1])), "free")
    same_pair = replace(tt, route=("A", "A"), weekday=np.array([0, 2]))
    assert "given to 2 route-days" in violations(same_pair, "free")
    # three route-days, two of them weekly: more vehicle-days than today (4 + 1 > 3) and more on Monday than today
    split = replace(
        tt, route_day=np.array([0, 2, 0, 1, 1]), weekday=np.array([0, 1, 0]), phase=np.array([0, 1, 0]),
        mobile=("M", "M", "N"), route=("A", "B", "C"),
    )  # fmt: skip
    text = violations(split)
    assert "vehicle-days" in text and "route-days every 1 week(s) on Monday" in text
    late = replace(tt, arrival=np.array([9 * H, 9 * H + 4000, 9 * H + 1800 + 1200 + 1200, 14 * H, 15 * H]))
    assert "min off the previous departure plus travel" in "\n".join(check_timetable(late, travel, tt, travel))


def synthetic(n_days: int = 3, per_day: int = 6, seed: int = 1) -> tuple[PeriodicTimetable, np.ndarray]:
    """A fortnightly timetable with a zig-zag order: each route-day visits its stops in a bad order."""
    rng = np.random.default_rng(seed)
    n = n_days * per_day * 2
    lon = rng.uniform(-1.5, -1.0, n)
    lat = rng.uniform(52.0, 52.4, n)
    route_day = np.repeat(np.arange(2 * n_days), per_day)
    arrival = np.zeros(n)
    for r in range(2 * n_days):
        idx = np.flatnonzero(route_day == r)
        arrival[idx] = 9 * H + np.arange(per_day) * 3600.0
    tt = PeriodicTimetable(
        lon=lon, lat=lat, dwell=np.full(n, 900.0), interval=np.full(n, 2), arrival=arrival, route_day=route_day,
        weekday=np.repeat(np.arange(n_days), 2), phase=np.tile([0, 1], n_days), mobile=("M",) * (2 * n_days),
        route=tuple(f"R{r}" for r in range(2 * n_days)),
    )  # fmt: skip
    return tt, crowfly_travel(lon, lat)


@pytest.mark.parametrize("mode", ["same-day", "free"])
def test_replan_is_valid_cheaper_and_deterministic(mode: str) -> None:
    tt, travel = synthetic()
    params = SolveParams(time_limit_s=2.0, seed=3)
    result = replan_timetable(tt, travel, mode=mode, params=params)  # type: ignore[arg-type]
    assert result.valid, result.violations
    assert result.score <= 1.0 and result.objective >= result.bound - 1e-6
    assert check_timetable(result.timetable, travel, tt, travel, mode=mode) == []  # type: ignore[arg-type]
    again = replan_timetable(tt, travel, mode=mode, params=params)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.timetable.route_day, result.timetable.route_day)
    np.testing.assert_array_equal(again.timetable.arrival, result.timetable.arrival)
    assert again.timetable.mobile == result.timetable.mobile and again.timetable.route == result.timetable.route


def test_same_day_keeps_each_stops_weekday_and_route_names() -> None:
    tt, travel = synthetic()
    result = replan_timetable(tt, travel, mode="same-day", params=SolveParams(time_limit_s=1.0))
    new = result.timetable
    old_days = np.asarray(tt.weekday)[np.asarray(tt.route_day)]
    new_days = np.asarray(new.weekday)[np.asarray(new.route_day)]
    np.testing.assert_array_equal(new_days, old_days)
    assert set(new.route) <= set(tt.route)
    # each route-day starts when the real route-day it follows started
    firsts = {tt.route[r]: float(np.asarray(tt.arrival)[o].min()) for r, o in enumerate(tt.orders())}
    for r, o in enumerate(new.orders()):
        assert float(np.asarray(new.arrival)[o].min()) == firsts[new.route[r]]


@pytest.mark.parametrize("mode", ["same-day", "free"])
def test_replan_a_real_council(shared: Path, mode: str) -> None:
    from service.plans.replan import load_timetable

    _, real = load_timetable(shared / "data" / "uk_mobile_libraries" / "stops" / "south_gloucestershire.csv")
    travel = crowfly_travel(real.lon, real.lat)
    result = replan_timetable(real, travel, mode=mode, params=SolveParams(time_limit_s=2.0))  # type: ignore[arg-type]
    assert result.valid, result.violations
    assert 0 < result.score <= 1.0
    np.testing.assert_array_equal(result.timetable.weekday, real.weekday)
    again = replan_timetable(real, travel, mode=mode, params=SolveParams(time_limit_s=2.0))  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.timetable.arrival, result.timetable.arrival)


def test_too_few_vehicles_or_too_long_days_are_explained() -> None:
    from optimizer.errors import InfeasibleProblemError

    tt, travel = two_route_days()
    # B on Mondays too: one mobile cannot drive weekly A and fortnightly B on distinct Mondays
    with pytest.raises(InfeasibleProblemError, match="on Mondays on distinct days of the 2-week cycle"):
        replan_timetable(replace(tt, weekday=np.array([0, 0])), travel, params=SolveParams(time_limit_s=1.0))
    # both weekly on Mondays (a clash today): one route-day is left, and 5 stops x 20 min exceed the 1.58 h limit
    weekly = replace(tt, weekday=np.array([0, 0]), interval=np.ones(5, dtype=np.int64))
    with pytest.raises(InfeasibleProblemError, match=r"5 stops every 1 week\(s\) on Mondays do not fit in 1 route-day"):
        replan_timetable(weekly, travel, params=SolveParams(time_limit_s=1.0))


def test_best_open_path_is_optimal_on_small_sets() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 10, (7, 2))
    travel = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    best = min(path_travel(travel, p) for p in itertools.permutations(range(7)))
    assert path_travel(travel, best_open_path(travel, range(7))) == pytest.approx(best)


def test_improved_routes_cover_every_node_within_the_span() -> None:
    rng = np.random.default_rng(5)
    pts = rng.uniform(0, 3600, (40, 2))
    travel = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    dwell = rng.uniform(600, 1800, 40)
    start = [list(range(i, 40, 8)) for i in range(8)]
    limit = max(dwell[r].sum() + path_travel(travel, r) for r in start)
    routes = improve_routes(travel, dwell, limit, start, 8, iterations=3000, time_limit_s=20.0, seed=1)
    assert sorted(v for r in routes for v in r) == list(range(40)) and len(routes) <= 8
    assert all(dwell[r].sum() + path_travel(travel, r) <= limit + 1e-6 for r in routes)
    assert sum(path_travel(travel, r) for r in routes) < sum(path_travel(travel, r) for r in start)


def test_optimizer_timetable_imports_no_pandas_or_geo_library() -> None:
    code = (
        "import sys, optimizer.replan\n"
        "print(','.join(m for m in ('pandas', 'geopandas', 'shapely', 'osmnx', 'pyproj', 'geodata', 'service')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
