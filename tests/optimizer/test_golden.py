"""Golden tests: small published instances solved to their published optima, with a proof (gap 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.instances import read_cap, read_optima, read_pmedian
from optimizer.location import LocationProblem, solve_location
from optimizer.params import SolveParams


@pytest.mark.parametrize("name", ["pmed1", "pmed4", "pmed5"])
def test_pmedian_published_optimum(shared: Path, name: str) -> None:
    folder = shared / "benchmarks" / "pmedian"
    inst = read_pmedian(folder / f"{name}.txt")
    problem = LocationProblem(time_s=inst.dist, demand=np.ones(inst.n), site_ids=tuple(map(str, range(inst.n))),
                              site_cost=np.zeros(inst.n), objective="p_median", p=inst.p)  # fmt: skip
    result = solve_location(problem, params=SolveParams(time_limit_s=20))
    assert result.objective == read_optima(folder)[name]["optimal"]
    assert result.status == "optimal" and result.gap == 0


@pytest.mark.parametrize(("name", "capacitated"), [("cap41", True), ("cap71", False), ("cap81", True)])
def test_warehouse_location_published_optimum(shared: Path, name: str, capacitated: bool) -> None:
    folder = shared / "benchmarks" / "facility_location"
    inst = read_cap(folder / f"{name}.txt")
    problem = LocationProblem(
        time_s=inst.cost, demand=inst.demand, site_ids=tuple(map(str, range(inst.m))), site_cost=inst.fixed_cost,
        objective="fixed_charge", assign_cost=inst.cost, capacity=inst.capacity if capacitated else None,
    )  # fmt: skip
    result = solve_location(problem, params=SolveParams(time_limit_s=20))
    key = "optimal_capacitated" if capacitated else "optimal_uncapacitated"
    assert result.objective == pytest.approx(read_optima(folder)[name][key], rel=1e-8)
    assert result.status == "optimal"
