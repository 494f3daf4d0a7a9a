"""The orienteering and m-CTP readers on tiny files, malformed files and one real file each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.routing_instances import (
    read_best_known,
    read_covering_tour,
    read_ctp_optima,
    read_orienteering,
)

TINY_OP = """10 1
0 0 0
3 4 0
1 0 5
0 2 7.5
"""

# |O| = 2 optional vertices, |C| = 3 customers, |M| = 1 (the depot), p = 2, q = 100
TINY_CTP = """tiny.ctp
2 3 1 2 100.00
  0   1   10.00
  0   2   20.000
  1   2   15.0

   1        1    0    1
   2        0    1    1

1 1 2

NODE_COORD_SECTION
1 0 0
2 10 0
3 20 0
4 1 1
5 2 2
6 3 3
EOF
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_orienteering_tiny(tmp_path: Path) -> None:
    inst = read_orienteering(write(tmp_path, "op.txt", TINY_OP))
    assert inst.name == "op"
    assert inst.budget == 10
    assert inst.n == 4
    assert (inst.start, inst.end) == (0, 1)
    np.testing.assert_allclose(inst.score, [0, 0, 5, 7.5])
    assert inst.travel[0, 1] == pytest.approx(5.0)
    assert inst.travel[1, 2] == pytest.approx(np.sqrt(4 + 16))  # unrounded
    np.testing.assert_allclose(inst.travel, inst.travel.T)
    assert (np.diag(inst.travel) == 0).all()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("10 1\n0 0 0\n", "at least a start and an end"),
        ("10 1\n0 0\n1 1 1\n", "x y score"),
        ("10 1\n0 0 a\n1 1 1\n", "non-numeric"),
    ],
)
def test_read_orienteering_malformed(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_orienteering(write(tmp_path, "bad.txt", text))


def test_read_covering_tour_tiny(tmp_path: Path) -> None:
    inst = read_covering_tour(write(tmp_path, "tiny.ctp", TINY_CTP))
    assert (inst.n_optional, inst.n_customers, inst.n_mandatory, inst.p, inst.q) == (2, 3, 1, 2, 100.0)
    assert inst.n == 3
    np.testing.assert_array_equal(inst.cost, [[0, 10, 20], [10, 0, 15], [20, 15, 0]])
    np.testing.assert_array_equal(inst.cover, [[0, 0, 0], [1, 0, 1], [0, 1, 1]])


def test_read_covering_tour_malformed(tmp_path: Path) -> None:
    missing_edge = TINY_CTP.replace("  1   2   15.0\n", "")
    with pytest.raises(ValueError, match="edges"):
        read_covering_tour(write(tmp_path, "a.ctp", missing_edge))
    short_row = TINY_CTP.replace("   2        0    1    1", "   2        0    1")
    with pytest.raises(ValueError, match="coverage row 2"):
        read_covering_tour(write(tmp_path, "b.ctp", short_row))
    with pytest.raises(ValueError, match="header"):
        read_covering_tour(write(tmp_path, "c.ctp", TINY_CTP.replace("2 3 1 2 100.00", "2 3 x 2 100.00")))


@pytest.mark.shared
def test_real_orienteering_file(shared: Path) -> None:
    root = shared / "benchmarks" / "orienteering"
    inst = read_orienteering(root / "tsiligrides_problem2" / "tsiligirides_problem_2_budget_15.txt")
    assert inst.n == 21
    assert inst.budget == 15
    assert inst.score[0] == inst.score[1] == 0
    best = read_best_known(root / "best_known.csv")
    assert len(best) == 49
    assert best["tsiligrides_problem2/tsiligirides_problem_2_budget_15.txt"] == 120


@pytest.mark.shared
def test_real_covering_tour_file(shared: Path) -> None:
    root = shared / "benchmarks" / "covering_tour"
    inst = read_covering_tour(root / "instances" / "A1-10-50-50-4-250.ctp")
    assert (inst.n_optional, inst.n_customers, inst.n_mandatory, inst.p, inst.q) == (40, 50, 10, 4, 5646.0)
    assert inst.cost[0, 1] == 1693
    np.testing.assert_array_equal(inst.cost, inst.cost.T)
    assert not inst.cover[:10].any()  # the mandatory vertices cover nothing in the file
    assert inst.cover[10:].any(axis=0).all()  # every customer is coverable
    optima = read_ctp_optima(root / "optima.csv")
    assert len(optima) == 8
    assert optima["A1-1-25-75-4-250"] == 12182
