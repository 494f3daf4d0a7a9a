"""Candidate bookmobile stops on the toy region."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from geodata.stops import SAFE_HIGHWAYS, StopRules, candidate_stops
from optimizer.kpis import nearest_open


@pytest.fixture(scope="module")
def unserved(toy_region) -> np.ndarray:  # type: ignore[no-untyped-def]
    """People more than 4 minutes' drive from the main branches once the small ones close."""
    keep = toy_region.branches["must_keep"].to_numpy(dtype=bool)
    return np.asarray(nearest_open(toy_region.time_s, keep) > 240)


def test_stops_credit_each_person_once_and_respect_the_rules(toy_region, unserved) -> None:  # type: ignore[no-untyped-def]
    keep = toy_region.branches["must_keep"].to_numpy(dtype=bool)
    rules = StopRules(walk_min=8, min_population=20, min_branch_distance_m=2000)
    stops, served_by = candidate_stops(toy_region.drive, toy_region.walk, toy_region.demand, unserved,
                                       branches=toy_region.branches[keep], rules=rules)  # fmt: skip
    assert len(stops) > 0
    assert (served_by[~unserved] == -1).all()
    pop = toy_region.demand["population"].to_numpy()
    for k, row in stops.reset_index(drop=True).iterrows():
        assert row["population"] == pytest.approx(pop[served_by == k].sum())
    assert (stops["population"] >= rules.min_population).all()
    crs = toy_region.drive.graph["crs"]
    bxy = toy_region.branches[keep].to_crs(crs).get_coordinates().to_numpy()
    sxy = stops.to_crs(crs).get_coordinates().to_numpy()
    assert (cKDTree(bxy).query(sxy)[0] >= 2000 - 1).all()
    for node in stops["node"]:
        kinds = {h for _, _, h in toy_region.drive.edges(int(node), data="highway")}
        assert kinds & SAFE_HIGHWAYS


def test_no_unserved_people_means_no_stops(toy_region) -> None:  # type: ignore[no-untyped-def]
    none = np.zeros(len(toy_region.demand), dtype=bool)
    stops, served_by = candidate_stops(toy_region.drive, toy_region.walk, toy_region.demand, none)
    assert len(stops) == 0 and (served_by == -1).all()


def test_max_stops_and_more_walking_serve_more(toy_region, unserved) -> None:  # type: ignore[no-untyped-def]
    args = (toy_region.drive, toy_region.walk, toy_region.demand, unserved)
    few, _ = candidate_stops(*args, rules=StopRules(max_stops=3, min_population=0))
    assert len(few) <= 3
    short, _ = candidate_stops(*args, rules=StopRules(walk_min=5, min_population=0))
    long, _ = candidate_stops(*args, rules=StopRules(walk_min=12, min_population=0))
    assert long["population"].sum() >= short["population"].sum()
