"""The OR-Library readers (pmed, cap, optima.csv) and the ``benchmarks.orlib`` runner with a fake solver."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from benchmarks import orlib
from benchmarks.instances import read_cap, read_optima, read_pmedian

# 4 vertices, p = 2. The pair (1, 2) repeats reversed with a LONGER last cost (9 wins over 1: neither the minimum
# nor the sum), and (3, 4) repeats reversed with a SHORTER last cost (3 wins over 10).
TINY_PMED = """4 6 2
1 2 1
2 3 4
4 3 10
4 1 20
2 1 9
3 4 3
"""
TINY_DIST = np.array(
    [
        [0, 9, 13, 16],
        [9, 0, 4, 7],
        [13, 4, 0, 3],
        [16, 7, 3, 0],
    ],
    dtype=float,
)

# 2 warehouses, 3 customers; the customer rows wrap across lines anywhere
TINY_CAP = """2 3
 10 100.
 20 200.
5 1.5
 2.5
7
3.0 4.0 6 7.5
    8.5
"""

PLACEHOLDER_CAP = """2 1
 capacity 100.
 capacity 200.
4 1.0 2.0
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------------------------
# read_pmedian


def test_pmedian_last_occurrence_of_a_repeated_edge_wins_in_both_directions(tmp_path: Path) -> None:
    inst = read_pmedian(write(tmp_path, "tiny.txt", TINY_PMED))
    assert (inst.name, inst.n, inst.p) == ("tiny", 4, 2)
    assert inst.dist.dtype == np.float64
    np.testing.assert_array_equal(inst.dist, TINY_DIST)
    assert not inst.dist.flags.writeable


def test_pmedian_evaluate_sends_each_vertex_to_its_nearest_open_site(tmp_path: Path) -> None:
    inst = read_pmedian(write(tmp_path, "tiny.txt", TINY_PMED))
    assert inst.evaluate([0, 2]) == 0 + 4 + 0 + 3
    assert inst.evaluate([1]) == 9 + 0 + 4 + 7


def test_pmedian_zero_cost_edge_is_an_edge(tmp_path: Path) -> None:
    inst = read_pmedian(write(tmp_path, "zero.txt", "2 1 1\n1 2 0\n"))
    np.testing.assert_array_equal(inst.dist, np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("4 6\n", "header 'n e p'"),
        ("4 x 2\n", "edge count e"),
        ("4 2 2\n1 2 3\n", "announces 2 edges"),
        ("4 1 2\n1 5 3\n", "outside 1..4"),
        ("3 1 1\n1 2 3\n", "disconnected"),
        ("2 1 3\n1 2 3\n", "exceeds"),
        ("2 1 1\n1 2 -3\n", "non-negative"),
        ("2 1 1\n1 2 abc\n", "not a number"),
    ],
)
def test_pmedian_malformed_files_fail_with_the_file_name(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(ValueError, match=match) as info:
        read_pmedian(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# read_cap


def test_cap_numbers_may_wrap_across_lines(tmp_path: Path) -> None:
    inst = read_cap(write(tmp_path, "capw.txt", TINY_CAP))
    assert (inst.name, inst.m, inst.n) == ("capw", 2, 3)
    np.testing.assert_array_equal(inst.capacity, [10, 20])
    np.testing.assert_array_equal(inst.fixed_cost, [100, 200])
    np.testing.assert_array_equal(inst.demand, [5, 7, 6])
    np.testing.assert_array_equal(inst.cost, [[1.5, 2.5], [3.0, 4.0], [7.5, 8.5]])
    assert inst.cost.shape == (inst.n, inst.m)


def test_cap_placeholder_needs_a_capacity(tmp_path: Path) -> None:
    path = write(tmp_path, "capa.txt", PLACEHOLDER_CAP)
    with pytest.raises(ValueError, match="placeholder 'capacity'") as info:
        read_cap(path)
    assert str(path) in str(info.value)
    inst = read_cap(path, capacity=8000)
    np.testing.assert_array_equal(inst.capacity, [8000, 8000])
    np.testing.assert_array_equal(inst.fixed_cost, [100, 200])
    np.testing.assert_array_equal(inst.cost, [[1.0, 2.0]])


def test_cap_numeric_capacities_ignore_the_argument(tmp_path: Path) -> None:
    inst = read_cap(write(tmp_path, "capw.txt", TINY_CAP), capacity=999)
    np.testing.assert_array_equal(inst.capacity, [10, 20])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("2\n", "header 'm n'"),
        ("2 3\n10 100\n20 200\n5 1 2\n", "need 15 numbers in all, found 9"),
        ("1 1\n10 100\n5 1 2\n", "need 6 numbers"),
        ("1 1\n10 x\n5 1\n", "fixed cost holds 'x'"),
        ("1 1\n10 100\n5 -1\n", "negative"),
    ],
)
def test_cap_malformed_files_fail_with_the_file_name(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(ValueError, match=match) as info:
        read_cap(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# read_optima


def test_optima_first_full_row_wins_and_empty_cells_are_none(tmp_path: Path) -> None:
    write(
        tmp_path,
        "optima.csv",
        "instance,capacity,optimal_capacitated,optimal_uncapacitated\n"
        "cap41,5000,1040444.375,\n"
        "cap71,58268,932615.750,932615.750\n"
        "cap71,1.5\n"
        "\n",
    )
    optima = read_optima(tmp_path)
    assert optima["cap41"] == {"capacity": 5000.0, "optimal_capacitated": 1040444.375, "optimal_uncapacitated": None}
    assert optima["cap71"]["optimal_capacitated"] == 932615.75
    assert set(optima) == {"cap41", "cap71"}


def test_optima_bad_value_names_row_and_field(tmp_path: Path) -> None:
    write(tmp_path, "optima.csv", "instance,optimal\npmed1,5819\npmed2,lots\n")
    with pytest.raises(ValueError, match=r"row 3, field 'optimal'"):
        read_optima(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# the real OR-Library files


@pytest.fixture(scope="session")
def pmed1(shared: Path):  # type: ignore[no-untyped-def]
    """OR-Library pmed1: n = 100, p = 5, published optimum 5819."""
    return read_pmedian(shared / "benchmarks" / "pmedian" / "pmed1.txt")


def test_pmed1_shape_and_metric(pmed1) -> None:  # type: ignore[no-untyped-def]
    assert (pmed1.n, pmed1.p) == (100, 5)
    assert pmed1.dist.shape == (100, 100)
    np.testing.assert_array_equal(pmed1.dist, pmed1.dist.T)
    assert (np.diag(pmed1.dist) == 0).all()
    off = pmed1.dist[~np.eye(100, dtype=bool)]
    assert (off > 0).all() and np.isfinite(off).all()
    # shortest paths satisfy the triangle inequality
    assert (pmed1.dist[:, :, None] <= pmed1.dist[:, None, :] + pmed1.dist.T[None, :, :] + 1e-9).all()


def test_pmed1_no_random_median_set_beats_the_published_optimum(pmed1, shared: Path) -> None:  # type: ignore[no-untyped-def]
    optimum = read_optima(shared / "benchmarks" / "pmedian")["pmed1"]["optimal"]
    assert optimum == 5819
    rng = np.random.default_rng(0)
    values = [pmed1.evaluate(rng.choice(pmed1.n, pmed1.p, replace=False)) for _ in range(200)]
    assert min(values) >= optimum
    # an optimal set found by CBC (through spopt) on this matrix reproduces the published value exactly
    assert pmed1.evaluate([6, 12, 64, 90, 98]) == optimum


def test_cap41_shape(shared: Path) -> None:
    inst = read_cap(shared / "benchmarks" / "facility_location" / "cap41.txt")
    assert (inst.m, inst.n) == (16, 50)
    assert inst.capacity.shape == inst.fixed_cost.shape == (16,)
    assert inst.demand.shape == (50,) and inst.cost.shape == (50, 16)
    assert (inst.capacity == 5000).all()


@pytest.mark.parametrize("name", ["cap71", "cap72", "cap73", "cap74"])
def test_cap7x_brute_force_uncapacitated_optimum_is_the_published_one(shared: Path, name: str) -> None:
    """All 2^16 - 1 sets of open warehouses, each customer wholly served by its cheapest open one."""
    folder = shared / "benchmarks" / "facility_location"
    inst = read_cap(folder / f"{name}.txt")
    published = read_optima(folder)[name]["optimal_uncapacitated"]
    masks = ((np.arange(1, 2**inst.m)[:, None] >> np.arange(inst.m)) & 1).astype(bool)
    best = np.inf
    for chunk in np.array_split(masks, 16):
        served = np.where(chunk[:, None, :], inst.cost[None, :, :], np.inf).min(axis=2).sum(axis=1)
        best = min(best, float((served + chunk @ inst.fixed_cost).min()))
    assert best == pytest.approx(published, abs=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# the runner, with a fake solver


class FakeLocation:
    """Stands in for optimizer.location: records the problem's keyword arguments, returns a fixed result."""

    def __init__(self, objective: float = 11.0, fail: bool = False) -> None:
        self.problems: list[dict[str, Any]] = []
        self.objective, self.fail = objective, fail

    def problem(self, **kwargs: Any) -> SimpleNamespace:
        self.problems.append(kwargs)
        return SimpleNamespace(**kwargs)

    def solve(self, problem: SimpleNamespace, *, params: Any = None) -> SimpleNamespace:
        if self.fail:
            raise RuntimeError("solver exploded")
        assert params.time_limit_s == 1
        return SimpleNamespace(status="optimal", objective=self.objective, bound=10.0, gap=1 / 11, runtime_s=0.01)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLocation:
    """optimizer.location with LocationProblem and solve_location replaced by a FakeLocation."""
    import optimizer.location

    fake = FakeLocation()
    monkeypatch.setattr(optimizer.location, "LocationProblem", fake.problem)
    monkeypatch.setattr(optimizer.location, "solve_location", fake.solve)
    return fake


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_runner_pmedian_prints_one_json_line_per_file(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "pmedx.txt", TINY_PMED)
    write(tmp_path, "optima.csv", "instance,optimal\npmedx,10\n")
    assert orlib.main(["pmedian", str(path), "--time-limit", "1"]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert {"instance", "objective", "bound", "gap", "seconds", "status", "optimum", "gap_to_optimum"} <= set(record)
    assert record["instance"] == "pmedx" and record["status"] == "optimal"
    assert record["objective"] == 11 and record["optimum"] == 10
    assert record["gap_to_optimum"] == pytest.approx(0.1)
    (kwargs,) = fake.problems
    assert kwargs["objective"] == "p_median" and kwargs["p"] == 2
    np.testing.assert_array_equal(kwargs["time_s"], TINY_DIST)
    np.testing.assert_array_equal(kwargs["demand"], np.ones(4))
    assert kwargs["site_ids"] == ("0", "1", "2", "3")


def test_runner_cflp_passes_capacities_unless_uncapacitated(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "capw.txt", TINY_CAP)
    assert orlib.main(["cflp", str(path), "--time-limit", "1"]) == 0
    assert orlib.main(["cflp", str(path), "--time-limit", "1", "--uncapacitated"]) == 0
    capacitated, uncapacitated = json_lines(capsys.readouterr().out)
    assert capacitated["capacitated"] and not uncapacitated["capacitated"]
    assert capacitated["optimum"] is None and capacitated["gap_to_optimum"] is None  # no optima.csv beside it
    first, second = fake.problems
    assert first["objective"] == "fixed_charge"
    np.testing.assert_array_equal(first["capacity"], [10, 20])
    np.testing.assert_array_equal(first["assign_cost"], first["time_s"])
    np.testing.assert_array_equal(first["site_cost"], [100, 200])
    assert second["capacity"] is None


def test_runner_reports_a_solver_error_and_exits_1(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail = True
    path = write(tmp_path, "pmedx.txt", TINY_PMED)
    assert orlib.main(["pmedian", str(path), "--time-limit", "1"]) == 1
    (record,) = json_lines(capsys.readouterr().out)
    assert record["status"] == "error" and record["objective"] is None
    assert "solver exploded" in record["error"]


@pytest.fixture
def fake_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared folder with one tiny pmed instance (optimum 7) and one tiny cap instance with both optima."""
    root = tmp_path / "shared"
    (root / "data").mkdir(parents=True)
    pmed = root / "benchmarks" / "pmedian"
    cap = root / "benchmarks" / "facility_location"
    pmed.mkdir(parents=True)
    cap.mkdir(parents=True)
    write(pmed, "pmed1.txt", TINY_PMED)
    write(pmed, "optima.csv", "instance,optimal\npmed1,7\n")
    write(cap, "cap71.txt", TINY_CAP)
    write(cap, "optima.csv", "instance,optimal_capacitated,optimal_uncapacitated\ncap71,11,11\ncap71,11\n")
    monkeypatch.setenv("BRANCHNET_SHARED_DIR", str(root))
    return root


def test_summary_prints_tables_and_verdicts(
    fake_shared: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    assert orlib.main(["summary", "--time-limit", "1", "--no-spopt"]) == 0
    out = capsys.readouterr().out
    assert "pmed1 (p=2)" in out and "cap71 uncap." in out
    assert "p-median: published optimum reached on 0/1 (target 1/1): FAIL" in out  # 11 > 7
    assert "bound gap <= 0.5% on 0/1" in out  # the fake's gap is 1/11
    assert "cap: published optimum on 2/2 (target 2/2): PASS" in out


def test_summary_json_ends_with_the_totals(
    fake_shared: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    assert orlib.main(["summary", "--time-limit", "1", "--no-spopt", "--json", "--instances", "cap71"]) == 0
    *records, totals = json_lines(capsys.readouterr().out)
    assert [r["instance"] for r in records] == ["cap71", "cap71"]
    assert totals["cap_optimum"] == [2, 2] and totals["cap_optimum_pass"] is True
    assert "pmedian_optimum" not in totals


def test_summary_spopt_side_by_side(fake_shared: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("spopt")
    pytest.importorskip("pulp")
    fake.objective = 7.0
    assert (
        orlib.main(["summary", "--time-limit", "1", "--spopt-time-limit", "10", "--json", "--instances", "pmed1"]) == 0
    )
    ours, theirs, totals = json_lines(capsys.readouterr().out)
    assert ours["solver"] == "branchnet" and theirs["solver"] == "spopt+cbc"
    # the tiny instance's unique optimum opens vertices 1 and 3 (1-based): 0 + 4 + 0 + 3 = 7
    assert theirs["status"] == "optimal" and theirs["objective"] == 7 == theirs["objective_open_sites"]
    assert theirs["gap_to_optimum"] == 0 and theirs["ratio_objective"] == 1
    assert totals["spopt_mean_gap"] == 0 and totals["spopt_no_solution"] == 0


# ---------------------------------------------------------------------------------------------------------------
# capa/b/c placeholders, capacity shortfall, and the generated stand-ins


def test_cap_placeholder_is_not_needed_uncapacitated(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cflp capa.txt --uncapacitated`` runs without --capacity: the capacities are not used."""
    path = write(tmp_path, "capa.txt", PLACEHOLDER_CAP)
    assert orlib.main(["cflp", str(path), "--time-limit", "1", "--uncapacitated"]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert record["status"] == "optimal" and not record["capacitated"]
    (kwargs,) = fake.problems
    assert kwargs["capacity"] is None
    inst = read_cap(path, uncapacitated=True)
    assert np.isinf(inst.capacity).all()


def test_cap_placeholder_without_capacity_names_the_flag(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "capa.txt", PLACEHOLDER_CAP)
    assert orlib.main(["cflp", str(path), "--time-limit", "1"]) == 2
    err = capsys.readouterr().err
    assert "--capacity" in err and "--uncapacitated" in err and str(path) in err
    assert fake.problems == []  # nothing was solved


def test_capacity_below_total_demand_is_reported_before_solving(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    # demand 4 in all (the file's units); two warehouses of capacity 1.5 hold 3
    path = write(tmp_path, "capa.txt", PLACEHOLDER_CAP)
    assert orlib.main(["cflp", str(path), "--time-limit", "1", "--capacity", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "hold 3 in all but the 1 customers' demand totals 4" in err and "--capacity 2 or more" in err
    assert fake.problems == []
    short = TINY_CAP.replace(" 10 100.\n 20 200.", " 4 100.\n 5 200.")
    with pytest.raises(ValueError, match=r"hold 9 in all but the 3 customers' demand totals 18"):
        read_cap(write(tmp_path, "short.txt", short))
    read_cap(write(tmp_path, "short2.txt", short), uncapacitated=True)  # ignored capacities are not checked


def test_runner_cflp_single_source_and_placeholder_capacity(
    tmp_path: Path, fake: FakeLocation, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "capa.txt", PLACEHOLDER_CAP)
    write(tmp_path, "optima.csv", "instance,capacity,optimal_capacitated,optimal_uncapacitated\ncapa-8000,8000,10,\n")
    assert orlib.main(["cflp", str(path), "--time-limit", "1", "--capacity", "8000", "--single-source"]) == 0
    (record,) = json_lines(capsys.readouterr().out)
    assert record["instance"] == "capa-8000" and record["optimum"] == 10 and record["single_source"]
    (kwargs,) = fake.problems
    assert kwargs["single_source"] is True
    np.testing.assert_array_equal(kwargs["capacity"], [8000, 8000])


def test_cap_like_generator_matches_the_published_shape() -> None:
    from benchmarks.instances import CAP_LIKE_CAPACITIES, CAP_LIKE_TOTAL_DEMAND, generate_cap_like

    for kind, caps in CAP_LIKE_CAPACITIES.items():
        a, b = generate_cap_like(kind, caps[0]), generate_cap_like(kind, caps[-1])
        assert (a.m, a.n) == (100, 1000)
        assert a.demand.sum() == CAP_LIKE_TOTAL_DEMAND and (a.demand >= 1).all()
        assert (a.capacity == caps[0]).all() and (b.capacity == caps[-1]).all()
        np.testing.assert_array_equal(a.cost, b.cost)  # one set, four capacities
        np.testing.assert_array_equal(a.fixed_cost, b.fixed_cost)
    assert generate_cap_like("capa", 8000).name == "capa-like-8000"
    assert CAP_LIKE_CAPACITIES["capc"] == (5000, 5750, 6500, 7250)


def test_cap_like_round_trips_through_the_placeholder_format(tmp_path: Path) -> None:
    from benchmarks.instances import generate_cap_like, write_cap

    inst = generate_cap_like("capb", 6000)
    back = read_cap(write_cap(inst, tmp_path / "capb.txt", placeholder=True), capacity=6000)
    np.testing.assert_allclose(back.cost, inst.cost, atol=5e-4)
    np.testing.assert_array_equal(back.demand, inst.demand)
    assert (back.capacity == 6000).all()


@pytest.mark.parametrize("number", [21, 25, 40])
def test_pmedian_like_graph_is_shaped_like_or_library(number: int, tmp_path: Path) -> None:
    from benchmarks.instances import PMED_LIKE_SIZES, generate_pmedian_like, pmedian_like, write_pmedian

    n, p, edges = generate_pmedian_like(number)
    assert (n, p) == PMED_LIKE_SIZES[number]
    assert len(edges) == n * n // 50
    assert edges[:, 2].min() >= 1 and edges[:, 2].max() <= 100
    pairs = {(min(a, b), max(a, b)) for a, b, _ in edges}
    assert len(pairs) == len(edges) and all(a != b for a, b in pairs)
    # the reader (shortest paths, connectivity check) agrees with the generator's own instance
    inst = read_pmedian(write_pmedian(n, p, edges, tmp_path / f"pmed{number}.txt"))
    np.testing.assert_array_equal(inst.dist, pmedian_like(number).dist)
