"""The CVRPLIB reader, the best-known table and the ``benchmarks.cvrp`` runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import cvrp
from benchmarks.instances import read_cvrp, read_cvrp_best_known

# 4 nodes, the depot is node 2 (not the first), node ids out of order in the demand section. Distances from the
# depot at (0, 0): to (2, 3) is 3.606 -> 4 (rounded, where truncation gives 3), to (1, 3) is 3.162 -> 3, to (3, 0)
# is 3.
TINY = """NAME : tiny-n4-k2
COMMENT : hand-made
TYPE : CVRP
DIMENSION : 4
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
 1 2 3
 2 0 0
 3 1 3
 4 3 0
DEMAND_SECTION
3 4
1 6
2 0
4 5
DEPOT_SECTION
 2
 -1
EOF
"""
# the same instance with the depot first, as PyVRP's reader requires
TINY_DEPOT_FIRST = (
    TINY.replace(" 1 2 3\n 2 0 0\n", " 1 0 0\n 2 2 3\n")
    .replace("1 6\n2 0\n", "2 6\n1 0\n")
    .replace(" 2\n -1", " 1\n -1")
)
TINY_DIST = np.array(
    [
        [0, 4, 1, 3],
        [4, 0, 3, 3],
        [1, 3, 0, 4],
        [3, 3, 4, 0],
    ]
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------------------------------------------------------
# read_cvrp


def test_tiny_file_parses_with_rounded_distances(tmp_path: Path) -> None:
    inst = read_cvrp(write(tmp_path, "tiny-n4-k2.vrp", TINY))
    assert (inst.name, inst.n, inst.capacity, inst.depot, inst.k) == ("tiny-n4-k2", 4, 10, 1, 2)
    np.testing.assert_array_equal(inst.demand, [6, 0, 4, 5])
    np.testing.assert_array_equal(inst.coords[1], [0, 0])
    np.testing.assert_array_equal(inst.dist, TINY_DIST)
    np.testing.assert_array_equal(inst.customers, [0, 2, 3])
    assert not inst.dist.flags.writeable
    assert inst.route_cost([[0], [2, 3], []]) == (4 + 4) + (3 + 4 + 3)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("CAPACITY : 10\n", ""), "no CAPACITY"),
        (("DIMENSION : 4", "DIMENSION : four"), "not a whole number"),
        (("EUC_2D", "EXPLICIT"), "only EUC_2D"),
        ((" 4 3 0\n", ""), "NODE_COORD_SECTION needs 4 rows"),
        (("3 4\n", "3 11\n"), "above the capacity 10"),
        (("3 4\n", "3 -4\n"), "non-negative whole numbers"),
        ((" 2\n -1", " 2\n 3\n -1"), "exactly one node"),
        (("2 0\n", "2 1\n"), "the depot \\(node 2\\) has demand 1"),
        (("1 6\n", "3 6\n"), "each node 1..4 once"),
        (("COMMENT : hand-made", "COMMENT hand-made"), "neither 'KEY : value'"),
    ],
)
def test_malformed_files_fail_with_the_file_name(tmp_path: Path, edit: tuple[str, str], match: str) -> None:
    old, new = edit
    assert old in TINY
    path = write(tmp_path, "bad.vrp", TINY.replace(old, new, 1))
    with pytest.raises(ValueError, match=match) as info:
        read_cvrp(path)
    assert str(path) in str(info.value)


def test_best_known_table(tmp_path: Path) -> None:
    write(tmp_path, "optima.csv", "set,instance,customers,capacity,best_known_cost,proven_optimal\nA,x,3,10,17,True\n")
    assert read_cvrp_best_known(tmp_path) == {"x": 17.0}
    write(tmp_path, "optima.csv", "set,instance,best_known_cost\nA,x,lots\n")
    with pytest.raises(ValueError, match="row 2, field 'best_known_cost'"):
        read_cvrp_best_known(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# the real A set


@pytest.fixture(scope="session")
def a_n32_k5(shared: Path):  # type: ignore[no-untyped-def]
    """CVRPLIB A-n32-k5: 31 customers, capacity 100, 5 routes, optimum 784."""
    return read_cvrp(shared / "benchmarks" / "cvrp" / "A" / "A-n32-k5.vrp")


def test_a_n32_k5_parses(a_n32_k5, shared: Path) -> None:  # type: ignore[no-untyped-def]
    assert (a_n32_k5.n, a_n32_k5.capacity, a_n32_k5.depot, a_n32_k5.k) == (32, 100, 0, 5)
    assert a_n32_k5.demand.sum() == 410 and a_n32_k5.demand[0] == 0
    np.testing.assert_array_equal(a_n32_k5.dist, a_n32_k5.dist.T)
    assert a_n32_k5.dist[0, 1] == 35  # (82, 76) to (96, 44): sqrt(1220) = 34.93
    known = read_cvrp_best_known(shared / "benchmarks" / "cvrp")
    assert len(known) == 27 and known["A-n32-k5"] == 784


@pytest.mark.slow
def test_a_n32_k5_solution_is_valid_and_near_the_optimum(a_n32_k5) -> None:  # type: ignore[no-untyped-def]
    from optimizer.params import SolveParams
    from optimizer.routing import RoutingProblem, solve_routing

    inst = a_n32_k5
    problem = RoutingProblem(travel=inst.dist, n_vehicles=inst.n - 1, demand=inst.demand, capacity=inst.capacity)
    result = solve_routing(problem, params=SolveParams(time_limit_s=5))
    routes = [list(r[1:-1]) for r in result.routes]
    assert sorted(c for r in routes for c in r) == list(range(1, 32))  # every customer once
    assert all(inst.demand[r].sum() <= inst.capacity for r in routes if r)
    assert inst.route_cost(routes) == result.objective
    assert result.objective <= 784 * 1.05
    assert cvrp.check_routes(inst, routes, result.objective) is None


def test_check_routes_names_the_fault(a_n32_k5) -> None:  # type: ignore[no-untyped-def]
    routes = [list(range(1, 32))]
    assert "capacity" in (cvrp.check_routes(a_n32_k5, routes, a_n32_k5.route_cost(routes)) or "")
    assert "unvisited" in (cvrp.check_routes(a_n32_k5, [[1, 2]], 0) or "")
    singles = [[c] for c in range(1, 32)]
    assert "not the reported" in (cvrp.check_routes(a_n32_k5, singles, 1) or "")


# ---------------------------------------------------------------------------------------------------------------
# the runner


def test_depot_first_variant_is_the_same_instance(tmp_path: Path) -> None:
    inst = read_cvrp(write(tmp_path, "tiny-n4-k2.vrp", TINY_DEPOT_FIRST))
    order = [1, 0, 2, 3]  # the depot-first node i is node order[i] of TINY
    assert inst.depot == 0
    np.testing.assert_array_equal(inst.dist, TINY_DIST[np.ix_(order, order)])
    np.testing.assert_array_equal(inst.demand, [0, 6, 4, 5])


def test_runner_prints_one_checked_json_line_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "tiny-n4-k2.vrp", TINY)
    write(tmp_path, "optima.csv", "set,instance,best_known_cost\nT,tiny-n4-k2,14\n")
    assert cvrp.main([str(path), "--time-limit", "0.3"]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    keys = {"instance", "objective", "bound", "gap", "seconds", "status", "best_known", "gap_to_best_known"}
    assert keys <= set(record)
    # demands 6, 4, 5 with capacity 10: nodes 0 and 3 cannot share a route; {0, 2} + {3} costs 8 + 6 = 14, less
    # than {0} + {2, 3} (8 + 10) or three routes (8 + 6 + 6)
    assert record["objective"] == 14 and record["best_known"] == 14 and record["gap_to_best_known"] == 0
    assert record["bound"] is None and record["gap"] is None
    assert record["valid"] is True and record["routes"] == 2 and record["fleet"] == 3


def test_summary_without_pyvrp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    root = tmp_path / "shared"
    (root / "data").mkdir(parents=True)
    folder = root / "benchmarks" / "cvrp" / "A"
    folder.mkdir(parents=True)
    write(folder, "tiny-n4-k2.vrp", TINY_DEPOT_FIRST)
    write(folder.parent, "optima.csv", "set,instance,best_known_cost\nT,tiny-n4-k2,14\n")
    monkeypatch.setenv("BRANCHNET_SHARED_DIR", str(root))
    assert cvrp.main(["summary", "--time-limit", "0.3", "--no-pyvrp"]) == 0
    out = capsys.readouterr().out
    assert "tiny-n4-k2" in out and "ours 0.000% on 1" in out and "1/1 valid" in out
    assert "not evaluated" in out
    if cvrp.pyvrp_available() is None:
        assert cvrp.main(["summary", "--time-limit", "0.3", "--json"]) == 0
        ours, theirs, totals = json_lines(capsys.readouterr().out)
        assert ours["solver"] == "ortools" and theirs["solver"] == "pyvrp"
        assert theirs["objective"] == 14 and theirs["valid"] is True
        assert totals["target_pass"] is True
