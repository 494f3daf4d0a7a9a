"""The periodic bookmobile model: shifts and breaks, weekdays, prize-collecting drops, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.bookmobile import BookmobileProblem, Fleet, dwell_time, plan_timetable
from optimizer.errors import InvalidCostError, InvalidProblemError
from optimizer.params import SolveParams

PARAMS = SolveParams(time_limit_s=3.0, seed=0)


def village_problem(seed: int = 0, n: int = 24, **kw: object) -> BookmobileProblem:
    """Villages scattered around a depot, 30 km across, at 40 km/h."""
    rng = np.random.default_rng(seed)
    xy = np.vstack([[0.0, 0.0], rng.uniform(-15_000, 15_000, (n, 2))])
    travel = np.linalg.norm(xy[:, None] - xy[None], axis=2) / (40 / 3.6)
    pop = rng.integers(20, 900, n).astype(float)
    args: dict[str, object] = dict(
        travel_s=travel, stop_ids=tuple(f"v{i}" for i in range(n)), prize=pop, dwell_s=dwell_time(pop * 0.03),
        interval_weeks=np.where(pop > 600, 1, np.where(pop > 250, 2, 4)), fleet=Fleet(vehicles=1),
        community=tuple(f"c{i // 2}" for i in range(n)), value_per_person_s=20.0,
    )  # fmt: skip
    args.update(kw)
    return BookmobileProblem(**args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    """A timetable for the village problem."""
    return plan_timetable(village_problem(), params=PARAMS)


def _recount(problem: BookmobileProblem, day) -> tuple[list[float], list[float], float, float]:  # type: ignore[no-untyped-def]
    """Clock a route-day again from the travel matrix and the dwell times: leave the depot at the shift's start,
    drive each leg, dwell, and take the break where the timetable puts it (after the last stop that ends before
    it); returns arrivals, departures, the return to the depot and the driving."""
    t = np.asarray(problem.travel_s)
    ids = list(problem.stop_ids)
    lunch_start, lunch_end = day.lunch
    now, prev, driving = float(day.start_s), 0, 0.0
    arrivals, departures = [], []
    for stop in day.stops:
        node = ids.index(stop) + 1
        if now <= lunch_start < now + t[prev, node] + problem.dwell_s[node - 1]:
            now = float(lunch_end)  # the break comes before this leg
        now += t[prev, node]
        driving += t[prev, node]
        arrivals.append(now)
        now += float(problem.dwell_s[node - 1])
        departures.append(now)
        prev = node
    if lunch_start >= now:  # the break after the last stop
        now = max(now, float(lunch_end))
    driving += t[prev, 0]
    return arrivals, departures, now + t[prev, 0], driving


def test_every_route_respects_shift_and_break(result) -> None:  # type: ignore[no-untyped-def]
    """The clock times are recounted from the travel matrix and the dwell times, not read back."""
    problem = village_problem()
    fleet = problem.fleet
    assert result.route_days
    for day in result.route_days:
        arrivals, departures, back, driving = _recount(problem, day)
        np.testing.assert_allclose(day.arrivals_s, arrivals, atol=len(arrivals) + 1)  # whole seconds, rounded
        np.testing.assert_allclose(day.departures_s, departures, atol=len(arrivals) + 1)
        assert day.driving_s == pytest.approx(driving, abs=1e-6)
        assert back <= fleet.shift_start_s + fleet.shift_s + 1  # home before the shift ends
        lunch_start, lunch_end = day.lunch
        assert lunch_end - lunch_start == fleet.lunch_s
        assert fleet.lunch_earliest_s <= lunch_start <= fleet.lunch_latest_s
        for a, d in zip(arrivals, departures, strict=True):
            assert d <= lunch_start + 1 or a >= lunch_end - 1  # no stop overlaps the break
        # the working time (driving and dwell, without the break) fits the shift minus the break
        dwell = sum(problem.dwell_s[problem.stop_ids.index(s)] for s in day.stops)
        assert driving + dwell <= fleet.shift_s - fleet.lunch_s + 1


def test_each_stop_keeps_its_weekday_and_interval_across_the_cycle(result) -> None:  # type: ignore[no-untyped-def]
    problem = village_problem()
    seen: dict[str, tuple[int, int]] = {}
    busy: set[tuple[int, int, int]] = set()
    for day in result.route_days:
        for week in range(day.phase, result.cycle_weeks, day.interval):
            slot = (day.vehicle, day.weekday, week)
            assert slot not in busy  # a vehicle drives one route-day a day
            busy.add(slot)
        for stop in day.stops:
            assert stop not in seen  # one route-day per stop: same weekday and time every visit
            seen[stop] = (day.weekday, day.interval)
            assert day.interval == problem.interval_weeks[problem.stop_ids.index(stop)]
    assert set(seen) | set(result.dropped) == set(problem.stop_ids)
    assert not set(seen) & set(result.dropped)


def test_at_most_one_stop_per_community(result) -> None:  # type: ignore[no-untyped-def]
    problem = village_problem()
    served = [problem.community[problem.stop_ids.index(s)] for d in result.route_days for s in d.stops]
    assert len(served) == len(set(served))


def test_dropped_stops_are_those_whose_prize_is_below_their_marginal_cost() -> None:
    # a star: each stop on its own spoke, so serving it costs exactly the out-and-back drive
    dist = np.array([600.0, 1200.0, 1800.0, 2400.0, 3000.0])
    n = len(dist)
    travel = np.zeros((n + 1, n + 1))
    travel[0, 1:] = travel[1:, 0] = dist
    travel[1:, 1:] = dist[:, None] + dist[None, :]
    np.fill_diagonal(travel, 0)
    prize = np.array([30.0, 70.0, 50.0, 150.0, 80.0])  # value 2 s/person: prize_s 60, 140, 100, 300, 160
    problem = BookmobileProblem(travel, tuple("abcde"), prize, np.full(n, 300.0), np.ones(n, int),
                                fleet=Fleet(vehicles=1, weekdays=(0,)), value_per_person_s=2.0)  # fmt: skip
    result = plan_timetable(problem, params=PARAMS)
    marginal = 2 * dist  # out and back, weekly
    should_drop = {s for s, p, c in zip("abcde", prize * 2.0, marginal, strict=True) if p < c}
    assert set(result.dropped) == should_drop
    assert all(reason == "prize below its marginal driving cost" for reason in result.dropped.values())


def test_same_seed_same_timetable() -> None:
    a = plan_timetable(village_problem(3), params=PARAMS)
    b = plan_timetable(village_problem(3), params=PARAMS)
    assert a.route_days == b.route_days and a.dropped == b.dropped


def test_bad_input() -> None:
    with pytest.raises(InvalidProblemError, match=r"longer than the .*working shift"):
        village_problem(dwell_s=np.full(24, 9 * 3600.0))
    travel = village_problem().travel_s.copy()
    travel[3, :] = np.inf
    with pytest.raises(InvalidCostError, match="'v2' cannot be reached"):
        village_problem(travel_s=travel)
    with pytest.raises(InvalidProblemError, match="interval_weeks must be in"):
        village_problem(interval_weeks=np.full(24, 6))
    with pytest.raises(InvalidProblemError, match="weekdays"):
        Fleet(weekdays=(0, 0))
